//! LBO checks: equity flows (signs, periods), exit equity from the exit multiple and net
//! debt, the debt schedule's roll-forward, continuity and interest, and the stated IRR and
//! MOIC against the flows.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    DEFAULT_TOLERANCE, Findings, InvalidModel, Severity, agrees, check_years, finite, invalid,
};
use crate::finance;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lbo {
    /// The sponsor's equity flows per year: the investment negative, the proceeds positive.
    pub equity_flows: Vec<Flow>,
    #[serde(default)]
    pub exit: Option<Exit>,
    #[serde(default)]
    pub debt_schedule: Vec<DebtRow>,
    #[serde(default)]
    pub stated_irr: Option<f64>,
    #[serde(default)]
    pub stated_moic: Option<f64>,
    #[serde(default)]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LboFlow")]
pub struct Flow {
    #[serde(default)]
    pub year: Option<f64>,
    pub amount: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LboExit")]
pub struct Exit {
    pub ebitda: f64,
    pub multiple: f64,
    /// Debt less cash at exit.
    pub net_debt: f64,
    #[serde(default)]
    pub equity_value: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LboDebtRow")]
pub struct DebtRow {
    #[serde(default)]
    pub year: Option<f64>,
    pub opening: f64,
    #[serde(default)]
    pub drawn: f64,
    #[serde(default)]
    pub repaid: f64,
    pub closing: f64,
    #[serde(default)]
    pub interest_rate: Option<f64>,
    #[serde(default)]
    pub interest: Option<f64>,
}

pub fn check(m: &Lbo) -> Result<(Vec<super::Finding>, Map<String, Value>), InvalidModel> {
    if m.equity_flows.len() < 2 {
        return Err(invalid(
            "equity_flows",
            "at least an entry and an exit flow are needed",
        ));
    }
    for (i, f) in m.equity_flows.iter().enumerate() {
        finite(&format!("equity_flows[{i}].amount"), f.amount)?;
    }
    let tol = m.tolerance.unwrap_or(DEFAULT_TOLERANCE);
    let mut out = Findings::default();
    let mut computed = Map::new();
    let flows: Vec<f64> = m.equity_flows.iter().map(|f| f.amount).collect();
    let years: Vec<Option<f64>> = m.equity_flows.iter().map(|f| f.year).collect();
    check_years(&years, "equity_flows", &mut out);

    let entry = flows[0];
    let last = *flows.last().expect("two or more");
    if entry >= 0.0 {
        out.add(
            "sign_convention",
            Severity::Error,
            format!("the entry equity flow is {entry}: the sponsor's investment is an outflow (negative)"),
            &[("entry", entry)],
        );
    }
    if last <= 0.0 {
        out.add(
            "sign_convention",
            Severity::Warning,
            format!("the exit equity flow is {last}: proceeds at exit are an inflow (positive)"),
            &[("exit", last)],
        );
    }

    if let Some(exit) = &m.exit {
        let equity = exit.ebitda * exit.multiple - exit.net_debt;
        computed.insert("exit_equity".into(), json!(equity));
        out.compare(
            "exit_equity_mismatch",
            "the exit equity value",
            exit.equity_value,
            equity,
            tol,
        );
        if !agrees(last, equity, tol) && exit.equity_value.is_none_or(|s| agrees(s, equity, tol)) {
            out.add(
                "exit_flow_mismatch",
                Severity::Error,
                format!(
                    "the last equity flow {last} is not the exit equity EBITDA {} × {} − net debt {} = {equity:.6}",
                    exit.ebitda, exit.multiple, exit.net_debt
                ),
                &[("last_flow", last), ("exit_equity", equity), ("ebitda", exit.ebitda), ("multiple", exit.multiple), ("net_debt", exit.net_debt)],
            );
        }
        if let Some(row) = m.debt_schedule.last()
            && !agrees(exit.net_debt, row.closing, tol)
        {
            out.add(
                "exit_net_debt_mismatch",
                Severity::Warning,
                format!(
                    "net debt at exit {} differs from the debt schedule's final closing balance {} (cash at exit?)",
                    exit.net_debt, row.closing
                ),
                &[("net_debt", exit.net_debt), ("closing_debt", row.closing)],
            );
        }
    }

    let debt_years: Vec<Option<f64>> = m.debt_schedule.iter().map(|d| d.year).collect();
    check_years(&debt_years, "debt_schedule", &mut out);
    for (i, d) in m.debt_schedule.iter().enumerate() {
        let expected = d.opening + d.drawn - d.repaid;
        if !agrees(d.closing, expected, tol) {
            out.add(
                "debt_rollforward",
                Severity::Error,
                format!(
                    "debt_schedule[{i}]: closing {} should be opening {} + drawn {} − repaid {} = {expected}",
                    d.closing, d.opening, d.drawn, d.repaid
                ),
                &[("index", i as f64), ("closing", d.closing), ("expected", expected)],
            );
        }
        if i > 0 {
            let previous = m.debt_schedule[i - 1].closing;
            if !agrees(d.opening, previous, tol) {
                out.add(
                    "debt_continuity",
                    Severity::Error,
                    format!(
                        "debt_schedule[{i}]: opening {} is not the previous closing {previous}",
                        d.opening
                    ),
                    &[
                        ("index", i as f64),
                        ("opening", d.opening),
                        ("previous_closing", previous),
                    ],
                );
            }
        }
        if let (Some(rate), Some(interest)) = (d.interest_rate, d.interest) {
            // On the opening balance or on the average balance: both are common.
            let on_opening = rate * d.opening;
            let on_average = rate * (d.opening + d.closing) / 2.0;
            if !agrees(interest, on_opening, tol) && !agrees(interest, on_average, tol) {
                out.add(
                    "interest_mismatch",
                    Severity::Error,
                    format!(
                        "debt_schedule[{i}]: interest {interest} is neither {rate} × opening ({on_opening:.6}) nor {rate} × average balance ({on_average:.6})"
                    ),
                    &[("index", i as f64), ("interest", interest), ("on_opening", on_opening), ("on_average", on_average)],
                );
            }
        }
    }

    let paid: f64 = flows.iter().filter(|f| **f < 0.0).map(|f| -f).sum();
    let received: f64 = flows.iter().filter(|f| **f > 0.0).sum();
    if paid > 0.0 {
        let moic = received / paid;
        computed.insert("moic".into(), json!(moic));
        out.compare(
            "moic_mismatch",
            "the MOIC",
            m.stated_moic,
            moic,
            tol.max(1e-3),
        );
    }
    match finance::irr(&flows, 0.1) {
        Some(irr) => {
            computed.insert("irr".into(), json!(irr));
            // IRRs are quoted to a tenth of a percent or so: compare in absolute terms.
            if let Some(stated) = m.stated_irr
                && (stated - irr).abs() > 5e-4
            {
                out.add(
                    "irr_mismatch",
                    Severity::Error,
                    format!("the stated IRR {stated} does not follow from the equity flows, whose IRR is {irr:.6}"),
                    &[("stated", stated), ("computed", irr)],
                );
            }
        }
        None if m.stated_irr.is_some() => out.add(
            "irr_mismatch",
            Severity::Error,
            "an IRR is stated but the equity flows have none (they need an outflow and an inflow)"
                .into(),
            &[("stated", m.stated_irr.unwrap_or_default())],
        ),
        None => {}
    }
    Ok((out.0, computed))
}
