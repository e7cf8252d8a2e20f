//! `tessera check`: which imports of a component this host provides, asked of the same
//! linker `tessera up` links with, so a user learns what is missing before start-up fails.
//!
//! The linker type-checks imports one by one and stops at the first it cannot satisfy. So
//! the check instantiates against a copy of the linker, and each time an import fails it
//! records why, stands in traps for that import, and goes on: every missing import is found,
//! and an import that is there but of another shape (a function missing from an interface)
//! is reported with wasmtime's own reason.

use crate::state::HostState;
use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};

/// One import of a component and whether the host provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    /// `None` when provided; otherwise why not, in wasmtime's words.
    pub missing: Option<String>,
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
        stub(&mut trial.root(), engine, name, item)?;
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

/// Defines `name` as traps of the shape the component expects.
fn stub(
    linker: &mut LinkerInstance<'_, HostState>,
    engine: &Engine,
    name: &str,
    item: &ComponentItem,
) -> Result<()> {
    match item {
        ComponentItem::ComponentInstance(instance) => {
            let mut inner = linker.instance(name)?;
            for (export, item) in instance.exports(engine) {
                stub(&mut inner, engine, export, &item.ty)?;
            }
        }
        ComponentItem::ComponentFunc(func) if func.async_() => {
            let what = name.to_string();
            linker.func_new_concurrent(name, move |_, _, _, _| {
                let what = what.clone();
                Box::pin(async move { wasmtime::bail!("`{what}` is not provided by this host") })
            })?;
        }
        ComponentItem::ComponentFunc(_) => {
            let what = name.to_string();
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

/// Prints the report of one component; returns how many imports are missing.
pub fn print(label: &str, report: &[Import]) -> usize {
    println!("{label}");
    let mut missing = 0;
    for import in report {
        match &import.missing {
            None => println!("  provided      {}", import.name),
            Some(why) => {
                missing += 1;
                println!("  not provided  {}: {why}", import.name);
            }
        }
    }
    println!(
        "  {} imports, {} provided, {} not provided",
        report.len(),
        report.len() - missing,
        missing
    );
    missing
}
