//! `tessera check`: which imports of a component this host provides, asked of the same
//! linker `tessera up` links with, so a user learns what is missing before start-up fails.
//!
//! The linker type-checks imports one by one and stops at the first it cannot satisfy. So
//! the check instantiates against a copy of the linker, and each time an import fails it
//! records why, stands in traps for that import, and goes on: every missing import is found,
//! and an import that is there but of another shape (a function missing from an interface)
//! is reported with wasmtime's own reason.
//!
//! One kind of missing import does not stop a component: an interface of a WASI 0.3.0
//! release candidate (`wasi:cli/stdout@0.3.0-rc-2026-03-15`), which this host provides in its
//! released form. Spin's Python SDK 5 puts both the candidate and the release in its world,
//! and componentize-py imports every interface of the world whether the code calls it or not;
//! such a component links with traps for the candidate (see [`link`]).

use crate::state::HostState;
use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker, LinkerInstance, ResourceType};

/// One import of a component and whether the host provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    /// `None` when provided; otherwise why not, in wasmtime's words.
    pub missing: Option<String>,
}

impl Import {
    /// Missing, but linked as traps so the component still starts.
    pub fn linked_as_traps(&self) -> bool {
        self.missing.is_some() && is_wasi_release_candidate(&self.name)
    }
}

/// `wasi:<package>/<interface>@0.3.0-rc-…`: a pre-release of the WASI version this host
/// provides through wasmtime-wasi's p3. Pre-releases of 0.2.0 are not included: components
/// of that era call them from libc at start, so traps would only move the failure.
pub fn is_wasi_release_candidate(name: &str) -> bool {
    name.starts_with("wasi:")
        && name
            .rsplit_once('@')
            .is_some_and(|(_, version)| version.starts_with("0.3.0-rc-"))
}

/// Links `component`: with `linker` as it is when everything is provided; otherwise, when
/// all that is missing is WASI 0.3.0 release candidates, with traps for those (a call
/// fails with "`…` is not provided by this host"), returning their names for the log.
pub fn link(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
) -> Result<(InstancePre<HostState>, Vec<String>)> {
    let first = match linker.instantiate_pre(component) {
        Ok(pre) => return Ok((pre, Vec::new())),
        Err(err) => err,
    };
    let report = imports(engine, linker, component)?;
    let missing: Vec<&Import> = report.iter().filter(|i| i.missing.is_some()).collect();
    if missing.is_empty() || !missing.iter().all(|i| i.linked_as_traps()) {
        return Err(anyhow::Error::from(first));
    }
    let mut with_traps = linker.clone();
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        if missing.iter().any(|i| i.name == name) {
            stub(&mut with_traps.root(), engine, None, name, &item.ty)?;
        }
    }
    let pre = with_traps.instantiate_pre(component)?;
    Ok((pre, missing.into_iter().map(|i| i.name.clone()).collect()))
}

/// Every import of `component`, in the component's order, checked against `linker`.
pub fn imports(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
) -> Result<Vec<Import>> {
    let ty = component.component_type();
    let items: Vec<(String, ComponentItem)> = ty
        .imports(engine)
        .map(|(name, item)| (name.to_string(), item.ty))
        .collect();
    let mut report: Vec<Import> = items
        .iter()
        .map(|(name, _)| Import {
            name: name.clone(),
            missing: None,
        })
        .collect();

    let mut trial = linker.clone();
    trial.allow_shadowing(true);
    // Each round either succeeds or stubs one more import, so this ends.
    for _ in 0..=items.len() {
        let err = match trial.instantiate_pre(component) {
            Ok(_) => return Ok(report),
            Err(err) => err,
        };
        let text = format!("{err:#}");
        // The import the linker stopped at is named in backquotes; the longest match wins
        // (`wasi:http/types@0.2.0` over a shorter name that is its prefix).
        let Some(index) = items
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| text.contains(&format!("`{name}`")))
            .max_by_key(|(_, (name, _))| name.len())
            .map(|(i, _)| i)
        else {
            bail!("the component cannot be linked: {text}");
        };
        if report[index].missing.is_some() {
            bail!("the component cannot be linked even with traps for what is missing: {text}");
        }
        report[index].missing = Some(reason(&text, &items[index].0));
        let (name, item) = &items[index];
        stub(&mut trial.root(), engine, None, name, item)?;
    }
    bail!("the component cannot be linked")
}

/// wasmtime's message without the "component imports … not found in the linker" preamble
/// that the report's layout already says.
fn reason(text: &str, name: &str) -> String {
    let preamble_end = "a matching implementation was not found in the linker";
    let inner = match text.find(preamble_end) {
        Some(i) => text[i + preamble_end.len()..]
            .trim_start_matches(':')
            .trim(),
        None => text,
    };
    if inner.is_empty() {
        format!("`{name}` is not provided by this host")
    } else {
        inner.to_string()
    }
}

/// Defines `name` as traps of the shape the component expects; a call fails naming the
/// import in full (`wasi:random/random@…#get-random-bytes`).
fn stub(
    linker: &mut LinkerInstance<'_, HostState>,
    engine: &Engine,
    parent: Option<&str>,
    name: &str,
    item: &ComponentItem,
) -> Result<()> {
    let what = match parent {
        Some(parent) => format!("{parent}#{name}"),
        None => name.to_string(),
    };
    match item {
        ComponentItem::ComponentInstance(instance) => {
            let mut inner = linker.instance(name)?;
            for (export, item) in instance.exports(engine) {
                stub(&mut inner, engine, Some(name), export, &item.ty)?;
            }
        }
        ComponentItem::ComponentFunc(func) if func.async_() => {
            linker.func_new_concurrent(name, move |_, _, _, _| {
                let what = what.clone();
                Box::pin(async move { wasmtime::bail!("`{what}` is not provided by this host") })
            })?;
        }
        ComponentItem::ComponentFunc(_) => {
            linker.func_new(name, move |_, _, _, _| {
                wasmtime::bail!("`{what}` is not provided by this host")
            })?;
        }
        ComponentItem::Resource(_) => {
            linker.resource(name, ResourceType::host::<Missing>(), |_, _| Ok(()))?;
        }
        // Type exports need no definition; modules and components are never host imports.
        _ => {}
    }
    Ok(())
}

/// The stand-in type of a resource the host does not provide.
struct Missing;

/// Prints the report of one component; returns how many imports are missing (those linked
/// as traps are listed, not counted: the component starts).
pub fn print(label: &str, report: &[Import]) -> usize {
    println!("{label}");
    let (mut missing, mut traps) = (0, 0);
    for import in report {
        match &import.missing {
            None => println!("  provided      {}", import.name),
            Some(_) if import.linked_as_traps() => {
                traps += 1;
                println!(
                    "  traps         {}: a WASI 0.3.0 release candidate; this host provides \
                     0.3.0, and links the candidate as traps",
                    import.name
                );
            }
            Some(why) => {
                missing += 1;
                println!("  not provided  {}: {why}", import.name);
            }
        }
    }
    println!(
        "  {} imports, {} provided, {} linked as traps, {} not provided",
        report.len(),
        report.len() - missing - traps,
        traps,
        missing
    );
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasi_0_3_0_release_candidates_link_as_traps() {
        assert!(is_wasi_release_candidate(
            "wasi:cli/stdout@0.3.0-rc-2026-03-15"
        ));
        assert!(is_wasi_release_candidate(
            "wasi:http/client@0.3.0-rc-2025-09-16"
        ));
        assert!(!is_wasi_release_candidate("wasi:cli/stdout@0.3.0"));
        assert!(!is_wasi_release_candidate(
            "wasi:io/streams@0.2.0-rc-2023-10-18"
        ));
        assert!(!is_wasi_release_candidate("spin:mqtt/mqtt@3.0.0"));
        assert!(!is_wasi_release_candidate(
            "fermyon:spin/config@0.3.0-rc-2026-03-15"
        ));
        let provided = Import {
            name: "wasi:cli/stdout@0.3.0-rc-2026-03-15".into(),
            missing: None,
        };
        assert!(!provided.linked_as_traps());
    }
}
