//! DCF checks: the terminal growth below the discount rate, rates written as percentages,
//! signs, periods, discount factors against the stated convention (end or mid-year), the
//! terminal value, the enterprise value and the bridge to equity and per-share value.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    DEFAULT_TOLERANCE, Findings, InvalidModel, Severity, agrees, check_years, finite, invalid,
};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dcf {
    /// WACC or the discount rate, as a fraction (0.09 for 9 %).
    pub discount_rate: f64,
    /// `end` (default) or `mid` (mid-year).
    #[serde(default)]
    pub convention: Option<String>,
    pub periods: Vec<Period>,
    #[serde(default)]
    pub terminal: Option<Terminal>,
    #[serde(default)]
    pub enterprise_value: Option<f64>,
    #[serde(default)]
    pub bridge: Option<Bridge>,
    #[serde(default)]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DcfPeriod")]
pub struct Period {
    #[serde(default)]
    pub year: Option<f64>,
    pub cash_flow: f64,
    #[serde(default)]
    pub discount_factor: Option<f64>,
    #[serde(default)]
    pub present_value: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DcfTerminal")]
pub struct Terminal {
    /// Gordon growth, as a fraction.
    #[serde(default)]
    pub growth: Option<f64>,
    /// Exit multiple, with the metric it multiplies (the final year's EBITDA, say).
    #[serde(default)]
    pub exit_multiple: Option<f64>,
    #[serde(default)]
    pub metric: Option<f64>,
    /// The stated terminal value (at the end of the last period) and its present value.
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub present_value: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DcfBridge")]
pub struct Bridge {
    #[serde(default)]
    pub debt: f64,
    #[serde(default)]
    pub cash: f64,
    #[serde(default)]
    pub minority_interest: f64,
    #[serde(default)]
    pub preferred: f64,
    #[serde(default)]
    pub equity_value: Option<f64>,
    #[serde(default)]
    pub shares: Option<f64>,
    #[serde(default)]
    pub price_per_share: Option<f64>,
}

pub fn check(m: &Dcf) -> Result<(Vec<super::Finding>, Map<String, Value>), InvalidModel> {
    let r = finite("discount_rate", m.discount_rate)?;
    if r <= -1.0 {
        return Err(invalid(
            "discount_rate",
            "a discount rate must be above -100 %",
        ));
    }
    if m.periods.is_empty() {
        return Err(invalid("periods", "at least one period is needed"));
    }
    let mid = match m.convention.as_deref() {
        None | Some("end") => false,
        Some("mid") | Some("mid_year") => true,
        Some(other) => {
            return Err(invalid(
                "convention",
                format!("{other:?}: expected \"end\" or \"mid\""),
            ));
        }
    };
    let tol = m.tolerance.unwrap_or(DEFAULT_TOLERANCE);
    for (i, p) in m.periods.iter().enumerate() {
        finite(&format!("periods[{i}].cash_flow"), p.cash_flow)?;
    }
    let mut out = Findings::default();
    let mut computed = Map::new();

    if r > 1.0 {
        out.add(
            "rate_looks_like_percent",
            Severity::Warning,
            format!("the discount rate is {r}: rates are fractions (0.09 for 9 %)"),
            &[("discount_rate", r)],
        );
    }
    if r <= 0.0 {
        out.add(
            "non_positive_discount_rate",
            Severity::Error,
            format!("the discount rate is {r}: a DCF discounts at a positive rate"),
            &[("discount_rate", r)],
        );
    }
    let years: Vec<Option<f64>> = m.periods.iter().map(|p| p.year).collect();
    check_years(&years, "periods", &mut out);
    if m.periods.iter().all(|p| p.cash_flow < 0.0) {
        out.add(
            "sign_convention",
            Severity::Warning,
            "every cash flow is negative: free cash flows are positive when the business generates cash; check the sign convention".into(),
            &[("periods", m.periods.len() as f64)],
        );
    }

    // Discounting: period t (1-based) at t under the end convention, t − 0.5 at mid-year.
    let factor = |t: f64, mid: bool| 1.0 / (1.0 + r).powf(if mid { t - 0.5 } else { t });
    let mut pv_sum = 0.0;
    for (i, p) in m.periods.iter().enumerate() {
        let t = (i + 1) as f64;
        let expected = factor(t, mid);
        pv_sum += p.cash_flow * expected;
        if let Some(df) = p.discount_factor
            && !agrees(df, expected, tol)
        {
            let other = factor(t, !mid);
            let (stated_convention, other_name) = if mid { ("mid", "end") } else { ("end", "mid") };
            let message = if agrees(df, other, tol) {
                format!(
                    "periods[{i}]: the discount factor {df} follows the {other_name}-year convention, but the model states {stated_convention}-year ({expected:.6})"
                )
            } else {
                format!(
                    "periods[{i}]: the discount factor {df} should be {expected:.6} at {r} ({stated_convention}-year)"
                )
            };
            out.add(
                "discounting_mismatch",
                Severity::Error,
                message,
                &[
                    ("index", i as f64),
                    ("stated", df),
                    ("expected", expected),
                    ("other_convention", other),
                ],
            );
        }
        if let Some(pv) = p.present_value {
            let expected_pv = p.cash_flow * expected;
            if !agrees(pv, expected_pv, tol) {
                out.add(
                    "present_value_mismatch",
                    Severity::Error,
                    format!("periods[{i}]: the present value {pv} should be {expected_pv:.6} ({} × {expected:.6})", p.cash_flow),
                    &[("index", i as f64), ("stated", pv), ("expected", expected_pv), ("cash_flow", p.cash_flow)],
                );
            }
        }
    }
    computed.insert("present_value_of_cash_flows".into(), json!(pv_sum));

    let n = m.periods.len() as f64;
    let last = m.periods.last().expect("non-empty").cash_flow;
    let mut ev = pv_sum;
    if let Some(term) = &m.terminal {
        let tv = match (term.growth, term.exit_multiple) {
            (Some(g), None) => {
                let g = finite("terminal.growth", g)?;
                if g > 1.0 {
                    out.add(
                        "rate_looks_like_percent",
                        Severity::Warning,
                        format!("the terminal growth is {g}: rates are fractions (0.02 for 2 %)"),
                        &[("terminal_growth", g)],
                    );
                }
                if g >= r {
                    out.add(
                        "terminal_growth_not_below_discount_rate",
                        Severity::Error,
                        format!("terminal growth {g} is not below the discount rate {r}: the Gordon value is undefined or negative"),
                        &[("terminal_growth", g), ("discount_rate", r)],
                    );
                    None
                } else {
                    if last < 0.0 {
                        out.add(
                            "sign_convention",
                            Severity::Warning,
                            format!("the last cash flow {last} is negative, so the terminal value is negative"),
                            &[("last_cash_flow", last)],
                        );
                    }
                    Some(last * (1.0 + g) / (r - g))
                }
            }
            (None, Some(multiple)) => {
                let multiple = finite("terminal.exit_multiple", multiple)?;
                let metric = term.metric.ok_or_else(|| {
                    invalid(
                        "terminal.metric",
                        "an exit multiple needs the metric it multiplies",
                    )
                })?;
                if multiple <= 0.0 {
                    out.add(
                        "sign_convention",
                        Severity::Error,
                        format!("the exit multiple is {multiple}"),
                        &[("exit_multiple", multiple)],
                    );
                }
                Some(multiple * finite("terminal.metric", metric)?)
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "terminal",
                    "give growth or exit_multiple, not both",
                ));
            }
            (None, None) => return Err(invalid("terminal", "give growth or exit_multiple")),
        };
        if let Some(tv) = tv {
            out.compare(
                "terminal_value_mismatch",
                "the terminal value",
                term.value,
                tv,
                tol,
            );
            // The terminal value sits at the end of the last period; some mid-year models
            // discount it half a year earlier, which is accepted too.
            let pv_end = tv * factor(n, false);
            let pv_mid = tv * factor(n, true);
            if let Some(stated) = term.present_value
                && !agrees(stated, pv_end, tol)
                && !(mid && agrees(stated, pv_mid, tol))
            {
                out.add(
                    "terminal_discounting_mismatch",
                    Severity::Error,
                    format!("the terminal value's present value {stated} should be {pv_end:.6} ({tv:.6} discounted {n} periods)"),
                    &[("stated", stated), ("expected", pv_end), ("terminal_value", tv)],
                );
            }
            let pv_tv = term
                .present_value
                .filter(|s| mid && agrees(*s, pv_mid, tol))
                .unwrap_or(pv_end);
            computed.insert("terminal_value".into(), json!(tv));
            computed.insert("present_value_of_terminal".into(), json!(pv_tv));
            ev += pv_tv;
            if ev > 0.0 && pv_tv / ev > 0.85 {
                out.add(
                    "terminal_value_dominates",
                    Severity::Warning,
                    format!(
                        "the terminal value is {:.1}% of the enterprise value",
                        pv_tv / ev * 100.0
                    ),
                    &[("share", pv_tv / ev)],
                );
            }
        }
    }
    computed.insert("enterprise_value".into(), json!(ev));
    out.compare(
        "enterprise_value_mismatch",
        "the enterprise value",
        m.enterprise_value,
        ev,
        tol,
    );

    if let Some(b) = &m.bridge {
        let base = m.enterprise_value.unwrap_or(ev);
        let equity = base - b.debt + b.cash - b.minority_interest - b.preferred;
        computed.insert("equity_value".into(), json!(equity));
        if let Some(stated) = b.equity_value
            && !agrees(stated, equity, tol)
        {
            out.add(
                "equity_bridge_mismatch",
                Severity::Error,
                format!(
                    "equity value {stated} does not follow from EV {base} − debt {} + cash {} − minority {} − preferred {} = {equity:.6}",
                    b.debt, b.cash, b.minority_interest, b.preferred
                ),
                &[
                    ("stated", stated),
                    ("computed", equity),
                    ("enterprise_value", base),
                    ("debt", b.debt),
                    ("cash", b.cash),
                    ("minority_interest", b.minority_interest),
                    ("preferred", b.preferred),
                ],
            );
        }
        if let Some(shares) = b.shares {
            if shares <= 0.0 {
                return Err(invalid("bridge.shares", "shares must be positive"));
            }
            let per_share = b.equity_value.unwrap_or(equity) / shares;
            computed.insert("price_per_share".into(), json!(per_share));
            out.compare(
                "per_share_mismatch",
                "the value per share",
                b.price_per_share,
                per_share,
                tol,
            );
        }
    }
    Ok((out.0, computed))
}
