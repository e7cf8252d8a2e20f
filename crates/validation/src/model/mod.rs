//! Checks of financial models sent as JSON: a DCF (cash flows by period, a discount rate,
//! a terminal value by growth or exit multiple, the enterprise-to-equity bridge) or an LBO
//! (equity flows, exit, debt schedule, stated IRR and MOIC). Each finding carries the numbers
//! involved; stated numbers are compared with a relative tolerance.

mod dcf;
mod lbo;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use dcf::Dcf;
pub use lbo::Lbo;

/// Stated numbers agree when within this fraction (0.01 %): models are typed by hand and
/// rounded, but a wrong formula is off by far more.
pub const DEFAULT_TOLERANCE: f64 = 1e-4;

/// `POST /v1/validate/model`'s body: a DCF or an LBO, told apart by `kind`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[schemars(rename = "ValidateModelRequest")]
pub enum ModelRequest {
    Dcf(Dcf),
    Lbo(Lbo),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// The numbers involved, by name.
    pub numbers: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct ModelReport {
    pub kind: &'static str,
    /// No error findings (warnings allowed).
    pub valid: bool,
    pub findings: Vec<Finding>,
    /// What the checks computed from the model's own inputs.
    pub computed: Map<String, Value>,
}

/// A model field that cannot be checked at all.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidModel {
    pub field: String,
    pub message: String,
}

pub fn check(req: &ModelRequest) -> Result<ModelReport, InvalidModel> {
    let (kind, findings, computed) = match req {
        ModelRequest::Dcf(m) => {
            let (f, c) = dcf::check(m)?;
            ("dcf", f, c)
        }
        ModelRequest::Lbo(m) => {
            let (f, c) = lbo::check(m)?;
            ("lbo", f, c)
        }
    };
    Ok(ModelReport {
        kind,
        valid: findings.iter().all(|f| f.severity != Severity::Error),
        findings,
        computed,
    })
}

/// Collects findings with their numbers.
#[derive(Default)]
pub(crate) struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn add(
        &mut self,
        code: &'static str,
        severity: Severity,
        message: String,
        numbers: &[(&str, f64)],
    ) {
        let numbers = numbers
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
            .collect();
        self.0.push(Finding {
            code,
            severity,
            message,
            numbers,
        });
    }

    /// A stated number against the computed one.
    pub fn compare(
        &mut self,
        code: &'static str,
        what: &str,
        stated: Option<f64>,
        computed: f64,
        tolerance: f64,
    ) {
        let Some(stated) = stated else { return };
        if !agrees(stated, computed, tolerance) {
            self.add(
                code,
                Severity::Error,
                format!("{what} is stated as {stated}, but the model's inputs give {computed:.6}"),
                &[
                    ("stated", stated),
                    ("computed", computed),
                    ("difference", stated - computed),
                ],
            );
        }
    }
}

pub(crate) fn agrees(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b.abs().max(a.abs()).max(1e-9)
}

pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidModel {
    InvalidModel {
        field: field.into(),
        message: message.into(),
    }
}

pub(crate) fn finite(field: &str, x: f64) -> Result<f64, InvalidModel> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(invalid(field, format!("`{field}` must be a finite number")))
    }
}

/// Years that should run one after another: the first gap or repeat, as a finding.
pub(crate) fn check_years(years: &[Option<f64>], what: &str, out: &mut Findings) {
    let given: Vec<(usize, f64)> = years
        .iter()
        .enumerate()
        .filter_map(|(i, y)| y.map(|y| (i, y)))
        .collect();
    if given.is_empty() {
        return;
    }
    if given.len() != years.len() {
        out.add(
            "periods_misaligned",
            Severity::Error,
            format!("some {what} have a year and some do not"),
            &[
                ("with_year", given.len() as f64),
                ("periods", years.len() as f64),
            ],
        );
        return;
    }
    for w in given.windows(2) {
        let ((_, a), (i, b)) = (w[0], w[1]);
        if b - a != 1.0 {
            out.add(
                "periods_misaligned",
                Severity::Error,
                format!("{what}[{i}] is year {b} after year {a}: periods should follow one year after another"),
                &[("index", i as f64), ("previous_year", a), ("year", b)],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(body: Value) -> ModelReport {
        let req: ModelRequest = serde_json::from_value(body).unwrap();
        check(&req).unwrap()
    }

    fn codes(r: &ModelReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.code).collect()
    }

    /// Three years of 100 at 10 %, Gordon growth 2 %.
    fn dcf() -> Value {
        let r: f64 = 0.1;
        let df: Vec<f64> = (1..=3).map(|t| 1.0 / (1.0 + r).powi(t)).collect();
        let tv = 100.0 * 1.02 / 0.08;
        let pv_tv = tv * df[2];
        let ev = 100.0 * df.iter().sum::<f64>() + pv_tv;
        json!({
            "kind": "dcf", "discount_rate": r, "convention": "end",
            "periods": [
                {"year": 2025, "cash_flow": 100, "discount_factor": df[0]},
                {"year": 2026, "cash_flow": 100, "discount_factor": df[1]},
                {"year": 2027, "cash_flow": 100, "discount_factor": df[2], "present_value": 100.0 * df[2]}
            ],
            "terminal": {"growth": 0.02, "value": tv, "present_value": pv_tv},
            "enterprise_value": ev,
            "bridge": {"debt": 300, "cash": 50, "equity_value": ev - 250.0, "shares": 10, "price_per_share": (ev - 250.0) / 10.0}
        })
    }

    #[test]
    fn a_consistent_dcf_has_no_errors() {
        let r = run(dcf());
        assert!(r.valid && r.findings.is_empty(), "{:?}", r.findings);
        assert!((r.computed["terminal_value"].as_f64().unwrap() - 1275.0).abs() < 1e-9);
    }

    #[test]
    fn dcf_findings_carry_their_numbers() {
        let mut m = dcf();
        m["terminal"]["growth"] = json!(0.12);
        let r = run(m);
        assert!(!r.valid);
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "terminal_growth_not_below_discount_rate")
            .unwrap();
        assert_eq!(f.numbers["terminal_growth"], json!(0.12));
        assert_eq!(f.numbers["discount_rate"], json!(0.1));

        // Mid-year factors in a model that says end-of-year.
        let mut m = dcf();
        m["periods"][0]["discount_factor"] = json!(1.0 / 1.1f64.powf(0.5));
        let r = run(m);
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "discounting_mismatch")
            .unwrap();
        assert!(f.message.contains("mid-year convention"), "{}", f.message);

        let mut m = dcf();
        m["periods"][2]["year"] = json!(2029);
        assert!(codes(&run(m)).contains(&"periods_misaligned"));

        let mut m = dcf();
        m["bridge"]["equity_value"] = json!(m["enterprise_value"].as_f64().unwrap() - 300.0 - 50.0);
        let r = run(m);
        let f = r
            .findings
            .iter()
            .find(|f| f.code == "equity_bridge_mismatch")
            .unwrap();
        assert_eq!(f.numbers["cash"], json!(50.0));

        let mut m = dcf();
        m["enterprise_value"] = json!(1.0);
        assert!(codes(&run(m)).contains(&"enterprise_value_mismatch"));

        let mut m = dcf();
        m["discount_rate"] = json!(10);
        m["terminal"]["growth"] = json!(2);
        let c = codes(&run(m));
        assert!(c.contains(&"rate_looks_like_percent"), "{c:?}");
    }

    #[test]
    fn lbo_flows_debt_and_returns() {
        let good = json!({
            "kind": "lbo",
            "equity_flows": [{"year": 2024, "amount": -400}, {"year": 2025, "amount": 0}, {"year": 2026, "amount": 1000}],
            "exit": {"ebitda": 150, "multiple": 8, "net_debt": 200, "equity_value": 1000},
            "debt_schedule": [
                {"year": 2025, "opening": 600, "repaid": 200, "closing": 400, "interest_rate": 0.08, "interest": 48},
                {"year": 2026, "opening": 400, "repaid": 200, "closing": 200, "interest_rate": 0.08, "interest": 24}
            ],
            "stated_irr": 0.5811, "stated_moic": 2.5
        });
        let r = run(good.clone());
        assert!(r.valid && r.findings.is_empty(), "{:?}", r.findings);
        assert!((r.computed["irr"].as_f64().unwrap() - (2.5f64.sqrt() - 1.0)).abs() < 1e-12);

        let mut bad = good;
        bad["stated_irr"] = json!(0.25);
        bad["stated_moic"] = json!(3.0);
        bad["debt_schedule"][1]["opening"] = json!(450);
        bad["debt_schedule"][0]["closing"] = json!(420);
        bad["debt_schedule"][0]["interest"] = json!(60);
        let r = run(bad);
        let c = codes(&r);
        for code in [
            "irr_mismatch",
            "moic_mismatch",
            "debt_continuity",
            "debt_rollforward",
            "interest_mismatch",
        ] {
            assert!(c.contains(&code), "{code} in {c:?}");
        }
        assert!(!r.valid);
        let irr = r
            .findings
            .iter()
            .find(|f| f.code == "irr_mismatch")
            .unwrap();
        assert_eq!(irr.numbers["stated"], json!(0.25));

        let r = run(
            json!({"kind": "lbo", "equity_flows": [{"amount": 400}, {"amount": 1000}], "stated_irr": 0.1}),
        );
        assert_eq!(codes(&r), vec!["sign_convention", "irr_mismatch"]);
    }

    #[test]
    fn unusable_models_name_the_field() {
        let e = check(
            &serde_json::from_value(json!({"kind": "dcf", "discount_rate": 0.1, "periods": []}))
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.field, "periods");
        let e = check(&serde_json::from_value(json!({
            "kind": "dcf", "discount_rate": 0.1, "periods": [{"cash_flow": 1}], "terminal": {"exit_multiple": 8}
        })).unwrap()).unwrap_err();
        assert_eq!(e.field, "terminal.metric");
        let e = serde_json::from_value::<ModelRequest>(
            json!({"kind": "dcf", "discount_rate": 0.1, "periods": [], "override": 1}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("override"), "{e}");
        assert!(serde_json::from_value::<ModelRequest>(json!({"kind": "npv"})).is_err());
    }
}
