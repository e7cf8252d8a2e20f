//! The rules: hard constraints first (each a rejection), then warnings.
//!
//! A trade that only reduces an existing position (same direction, smaller size) is exempt
//! from the exposure, loss and drawdown limits — cutting risk after a loss is what those
//! limits want — but never from the circuit breaker or the liquidity limit.

use serde::Serialize;

use super::input::{Account, InvalidInput, ProposedTrade, RiskLimits, Side, SimilarTrade};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Approve,
    ApproveWithWarnings,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Hard,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub code: &'static str,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub message: String,
}

/// The account as it would be after the trade (percentages of equity).
#[derive(Debug, Clone, Serialize)]
pub struct Exposure {
    pub position_qty_before: f64,
    pub position_qty_after: f64,
    pub position_pct: f64,
    pub gross_exposure_pct: f64,
    pub net_exposure_pct: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    pub sector_pct: f64,
    pub daily_loss_pct: f64,
    pub drawdown_pct: f64,
    pub risk_reducing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub verdict: VerdictKind,
    /// Hard reasons first, then warnings.
    pub reasons: Vec<Reason>,
    pub exposure: Exposure,
    /// The similar past trades that lost (shown with their outcomes).
    pub similar_losses: Vec<SimilarTrade>,
}

fn hard(code: &'static str, limit: f64, value: f64, message: String) -> Reason {
    Reason {
        code,
        severity: Severity::Hard,
        limit: Some(limit),
        value: Some(round(value)),
        message,
    }
}

fn warning(code: &'static str, limit: Option<f64>, value: Option<f64>, message: String) -> Reason {
    Reason {
        code,
        severity: Severity::Warning,
        limit,
        value: value.map(round),
        message,
    }
}

/// Six decimals: enough for percentages, and stable in stored verdicts.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The verdict on `trade`. `breaker_halt` is the circuit breaker's reason while it is not
/// closed; `similar` are past trades near this one (any outcome; losers above the
/// threshold warn).
pub fn evaluate(
    trade: &ProposedTrade,
    account: &Account,
    limits: &RiskLimits,
    breaker_halt: Option<&str>,
    similar: &[SimilarTrade],
) -> Result<Verdict, InvalidInput> {
    trade.check()?;
    account.check()?;
    let exposure = exposure(trade, account);
    let increasing = !exposure.risk_reducing;
    let mut reasons = Vec::new();

    if let Some(why) = breaker_halt {
        reasons.push(Reason {
            code: "circuit_breaker_open",
            severity: Severity::Hard,
            limit: None,
            value: None,
            message: format!("trading is halted by the circuit breaker: {why}"),
        });
    }
    let class_allowed = limits
        .allowed_asset_classes
        .iter()
        .any(|c| same(c, &trade.asset_class));
    if increasing && !class_allowed {
        reasons.push(Reason {
            code: "asset_class_not_allowed",
            severity: Severity::Hard,
            limit: None,
            value: None,
            message: format!(
                "asset class {:?} is not allowed (allowed: {})",
                trade.asset_class,
                limits.allowed_asset_classes.join(", ")
            ),
        });
    }
    if increasing {
        let checks = [
            (
                "position_limit",
                limits.max_position_pct,
                exposure.position_pct,
                "the position would be",
            ),
            (
                "gross_exposure_limit",
                limits.max_gross_exposure_pct,
                exposure.gross_exposure_pct,
                "gross exposure would be",
            ),
            (
                "net_exposure_limit",
                limits.max_net_exposure_pct,
                exposure.net_exposure_pct.abs(),
                "net exposure would be",
            ),
            (
                "sector_limit",
                limits.max_sector_pct,
                exposure.sector_pct,
                "the sector's exposure would be",
            ),
        ];
        for (code, limit, value, what) in checks {
            if value > limit {
                reasons.push(hard(
                    code,
                    limit,
                    value,
                    format!("{what} {value:.2}% of equity, over the limit of {limit}%"),
                ));
            }
        }
        if exposure.daily_loss_pct >= limits.daily_loss_limit_pct {
            reasons.push(hard(
                "daily_loss_limit",
                limits.daily_loss_limit_pct,
                exposure.daily_loss_pct,
                format!(
                    "today's loss is {:.2}% of the day's starting equity, at or over the limit of {}%",
                    exposure.daily_loss_pct, limits.daily_loss_limit_pct
                ),
            ));
        }
        if exposure.drawdown_pct >= limits.max_drawdown_pct {
            reasons.push(hard(
                "max_drawdown",
                limits.max_drawdown_pct,
                exposure.drawdown_pct,
                format!(
                    "the account is {:.2}% below its peak, at or over the limit of {}%",
                    exposure.drawdown_pct, limits.max_drawdown_pct
                ),
            ));
        }
    }
    match trade.average_daily_volume {
        Some(adv) => {
            let pct = trade.quantity / adv * 100.0;
            if pct > limits.max_order_adv_pct {
                reasons.push(hard(
                    "liquidity_limit",
                    limits.max_order_adv_pct,
                    pct,
                    format!(
                        "the order is {pct:.2}% of average daily volume, over the limit of {}%",
                        limits.max_order_adv_pct
                    ),
                ));
            }
        }
        None => reasons.push(Reason {
            code: "liquidity_unknown",
            severity: Severity::Hard,
            limit: Some(limits.max_order_adv_pct),
            value: None,
            message: "average_daily_volume is needed to check the liquidity limit".into(),
        }),
    }

    // Warnings.
    if increasing {
        let near = |value: f64, limit: f64| {
            value >= limit * limits.concentration_warning_ratio && value <= limit
        };
        if near(exposure.position_pct, limits.max_position_pct) {
            reasons.push(warning(
                "concentration",
                Some(limits.max_position_pct),
                Some(exposure.position_pct),
                format!(
                    "the position would be {:.2}% of equity, near the limit of {}%",
                    exposure.position_pct, limits.max_position_pct
                ),
            ));
        }
        if near(exposure.sector_pct, limits.max_sector_pct) {
            reasons.push(warning(
                "sector_concentration",
                Some(limits.max_sector_pct),
                Some(exposure.sector_pct),
                format!(
                    "the sector would be {:.2}% of equity, near the limit of {}%",
                    exposure.sector_pct, limits.max_sector_pct
                ),
            ));
        }
        match trade.stop {
            None => reasons.push(warning(
                "no_stop",
                Some(limits.max_stop_distance_pct),
                None,
                "the trade adds risk without a protective stop".into(),
            )),
            Some(stop) => {
                let distance = (trade.limit_price - stop).abs() / trade.limit_price * 100.0;
                if distance > limits.max_stop_distance_pct {
                    reasons.push(warning(
                        "stop_too_wide",
                        Some(limits.max_stop_distance_pct),
                        Some(distance),
                        format!(
                            "the stop is {distance:.2}% from the limit price, wider than {}%",
                            limits.max_stop_distance_pct
                        ),
                    ));
                }
            }
        }
    }
    let mut similar_losses: Vec<SimilarTrade> = similar
        .iter()
        .filter(|t| t.pnl < 0.0 && t.similarity >= limits.similarity_threshold)
        .cloned()
        .collect();
    similar_losses.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    similar_losses.truncate(limits.similar_k as usize);
    if !similar_losses.is_empty() {
        let n = similar_losses.len();
        let lost: f64 = similar_losses.iter().map(|t| t.pnl).sum();
        reasons.push(warning(
            "similar_setups_failed",
            Some(limits.similarity_threshold),
            Some(n as f64),
            format!(
                "a setup like this failed {n} time{} before (total P&L {lost:.2}); best match {:.3} similar",
                if n == 1 { "" } else { "s" },
                similar_losses[0].similarity
            ),
        ));
    }

    let verdict = if reasons.iter().any(|r| r.severity == Severity::Hard) {
        VerdictKind::Reject
    } else if reasons.is_empty() {
        VerdictKind::Approve
    } else {
        VerdictKind::ApproveWithWarnings
    };
    Ok(Verdict {
        verdict,
        reasons,
        exposure,
        similar_losses,
    })
}

fn exposure(trade: &ProposedTrade, account: &Account) -> Exposure {
    let before: f64 = account
        .positions
        .iter()
        .filter(|p| same(&p.symbol, &trade.symbol))
        .map(|p| p.quantity)
        // `+ 0.0`: an empty f64 sum is -0.0, which reads oddly in an answer.
        .sum::<f64>()
        + 0.0;
    let delta = match trade.side {
        Side::Buy => trade.quantity,
        Side::Sell => -trade.quantity,
    };
    let after = before + delta;
    let risk_reducing =
        after.abs() < before.abs() && (after == 0.0 || after.signum() == before.signum());
    let sector = trade.sector.clone().or_else(|| {
        account
            .positions
            .iter()
            .find(|p| same(&p.symbol, &trade.symbol))
            .and_then(|p| p.sector.clone())
    });
    let others = account
        .positions
        .iter()
        .filter(|p| !same(&p.symbol, &trade.symbol));
    let (mut gross, mut net, mut sector_value) = (0.0, 0.0, 0.0);
    for p in others {
        let v = p.quantity * p.price;
        gross += v.abs();
        net += v;
        if let (Some(s), Some(ps)) = (&sector, &p.sector)
            && same(s, ps)
        {
            sector_value += v.abs();
        }
    }
    // The traded symbol is valued at the trade's limit price.
    let position_value = after * trade.limit_price;
    gross += position_value.abs();
    net += position_value;
    if sector.is_some() {
        sector_value += position_value.abs();
    }
    let equity = account.equity;
    let pct = |v: f64| v / equity * 100.0;
    let start_of_day = equity - account.day_pnl;
    let daily_loss_pct = (-account.day_pnl).max(0.0) / start_of_day * 100.0;
    let drawdown_pct = account
        .peak_equity
        .filter(|peak| *peak > equity)
        .map_or(0.0, |peak| (peak - equity) / peak * 100.0);
    Exposure {
        position_qty_before: before,
        position_qty_after: after,
        position_pct: round(pct(position_value.abs())),
        gross_exposure_pct: round(pct(gross)),
        net_exposure_pct: round(pct(net)),
        sector,
        sector_pct: round(pct(sector_value)),
        daily_loss_pct: round(daily_loss_pct),
        drawdown_pct: round(drawdown_pct),
        risk_reducing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::Position;
    use serde_json::json;

    fn trade(side: Side, quantity: f64, price: f64) -> ProposedTrade {
        ProposedTrade {
            symbol: "ACME".into(),
            side,
            quantity,
            limit_price: price,
            stop: Some(match side {
                Side::Buy => price * 0.95,
                Side::Sell => price * 1.05,
            }),
            asset_class: "stock".into(),
            sector: Some("tech".into()),
            average_daily_volume: Some(10_000_000.0),
        }
    }

    fn account() -> Account {
        Account {
            equity: 100_000.0,
            cash: 50_000.0,
            positions: vec![Position {
                symbol: "BETA".into(),
                quantity: 100.0,
                price: 100.0,
                sector: Some("energy".into()),
                asset_class: "stock".into(),
            }],
            day_pnl: 0.0,
            peak_equity: Some(100_000.0),
        }
    }

    fn codes(v: &Verdict) -> Vec<&'static str> {
        v.reasons.iter().map(|r| r.code).collect()
    }

    fn run(t: &ProposedTrade, a: &Account) -> Verdict {
        evaluate(t, a, &RiskLimits::default(), None, &[]).unwrap()
    }

    #[test]
    fn a_small_stopped_trade_is_approved() {
        let v = run(&trade(Side::Buy, 50.0, 100.0), &account());
        assert_eq!(v.verdict, VerdictKind::Approve, "{:?}", v.reasons);
        assert_eq!(v.exposure.position_pct, 5.0);
        assert_eq!(v.exposure.gross_exposure_pct, 15.0);
    }

    #[test]
    fn every_hard_limit_rejects_with_its_numbers() {
        let v = run(&trade(Side::Buy, 150.0, 100.0), &account());
        assert_eq!(v.verdict, VerdictKind::Reject);
        let r = &v.reasons[0];
        assert_eq!(
            (r.code, r.limit, r.value),
            ("position_limit", Some(10.0), Some(15.0))
        );

        let mut a = account();
        a.positions[0].quantity = 1_450.0;
        a.positions[0].sector = Some("tech".into());
        let v = run(&trade(Side::Buy, 90.0, 100.0), &a);
        assert!(codes(&v).contains(&"sector_limit"), "{:?}", codes(&v));
        assert!(codes(&v).contains(&"net_exposure_limit"), "{:?}", codes(&v));
        assert!(
            codes(&v).contains(&"gross_exposure_limit"),
            "{:?}",
            codes(&v)
        );

        let mut a = account();
        a.day_pnl = -4_000.0;
        a.equity = 96_000.0;
        let v = run(&trade(Side::Buy, 10.0, 100.0), &a);
        assert_eq!(codes(&v), vec!["daily_loss_limit"]);
        assert_eq!(v.reasons[0].value, Some(4.0));

        let mut a = account();
        a.peak_equity = Some(130_000.0);
        let v = run(&trade(Side::Buy, 10.0, 100.0), &a);
        assert_eq!(codes(&v), vec!["max_drawdown"]);

        let mut t = trade(Side::Buy, 10.0, 100.0);
        t.average_daily_volume = Some(500.0);
        assert_eq!(codes(&run(&t, &account())), vec!["liquidity_limit"]);
        t.average_daily_volume = None;
        assert_eq!(codes(&run(&t, &account())), vec!["liquidity_unknown"]);

        let mut t = trade(Side::Buy, 10.0, 100.0);
        t.asset_class = "crypto".into();
        assert_eq!(codes(&run(&t, &account())), vec!["asset_class_not_allowed"]);
    }

    #[test]
    fn the_breaker_rejects_everything_even_risk_reducing_trades() {
        let v = evaluate(
            &trade(Side::Sell, 10.0, 100.0),
            &Account {
                positions: vec![Position {
                    symbol: "ACME".into(),
                    quantity: 50.0,
                    price: 100.0,
                    sector: None,
                    asset_class: "stock".into(),
                }],
                ..account()
            },
            &RiskLimits::default(),
            Some("drawdown 12% ≥ 10%"),
            &[],
        )
        .unwrap();
        assert_eq!(v.verdict, VerdictKind::Reject);
        assert_eq!(codes(&v), vec!["circuit_breaker_open"]);
        assert!(v.reasons[0].message.contains("drawdown 12%"));
    }

    #[test]
    fn reducing_a_position_is_allowed_after_losses() {
        let mut a = account();
        a.day_pnl = -10_000.0;
        a.equity = 90_000.0;
        a.positions[0].symbol = "ACME".into();
        let mut t = trade(Side::Sell, 50.0, 100.0);
        t.stop = None;
        let v = run(&t, &a);
        assert!(v.exposure.risk_reducing);
        assert_eq!(v.verdict, VerdictKind::Approve, "{:?}", codes(&v));
        // Selling through zero into a short adds risk: the loss limit applies.
        let v = run(&trade(Side::Sell, 150.0, 100.0), &a);
        assert!(!v.exposure.risk_reducing);
        assert!(codes(&v).contains(&"daily_loss_limit"), "{:?}", codes(&v));
    }

    #[test]
    fn warnings_concentration_stops_and_similar_failures() {
        let mut t = trade(Side::Buy, 85.0, 100.0);
        t.stop = Some(80.0);
        let similar = vec![
            SimilarTrade {
                id: "1".into(),
                symbol: "ACME".into(),
                similarity: 0.91,
                pnl: -120.0,
                closed_at: None,
            },
            SimilarTrade {
                id: "2".into(),
                symbol: "ACME".into(),
                similarity: 0.95,
                pnl: -80.0,
                closed_at: None,
            },
            SimilarTrade {
                id: "3".into(),
                symbol: "X".into(),
                similarity: 0.97,
                pnl: 300.0,
                closed_at: None,
            },
            SimilarTrade {
                id: "4".into(),
                symbol: "Y".into(),
                similarity: 0.5,
                pnl: -1.0,
                closed_at: None,
            },
        ];
        let v = evaluate(&t, &account(), &RiskLimits::default(), None, &similar).unwrap();
        assert_eq!(v.verdict, VerdictKind::ApproveWithWarnings);
        assert_eq!(
            codes(&v),
            vec!["concentration", "stop_too_wide", "similar_setups_failed"]
        );
        assert_eq!(v.reasons[1].value, Some(20.0));
        assert!(
            v.reasons[2].message.contains("failed 2 times"),
            "{}",
            v.reasons[2].message
        );
        assert_eq!(
            v.similar_losses
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            vec!["2", "1"]
        );
        let mut t = trade(Side::Buy, 10.0, 100.0);
        t.stop = None;
        assert_eq!(codes(&run(&t, &account())), vec!["no_stop"]);
    }

    #[test]
    fn no_field_can_override_a_hard_constraint() {
        for extra in [
            "override",
            "force",
            "skip_checks",
            "role",
            "approved_by_model",
        ] {
            let body = json!({
                "symbol": "ACME", "side": "buy", "quantity": 1e6, "limit_price": 100.0,
                extra: true
            });
            let e = serde_json::from_value::<ProposedTrade>(body).unwrap_err();
            assert!(e.to_string().contains(extra), "{e}");
            let e =
                serde_json::from_value::<Account>(json!({"equity": 1.0, "cash": 1.0, extra: true}))
                    .unwrap_err();
            assert!(e.to_string().contains(extra), "{e}");
        }
    }

    #[test]
    fn bad_inputs_name_the_field() {
        let mut t = trade(Side::Buy, 1.0, 100.0);
        t.stop = Some(120.0);
        let e = evaluate(&t, &account(), &RiskLimits::default(), None, &[]).unwrap_err();
        assert_eq!(e.field, "trade.stop");
        let mut a = account();
        a.equity = 0.0;
        let e = evaluate(
            &trade(Side::Buy, 1.0, 1.0),
            &a,
            &RiskLimits::default(),
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field, "account.equity");
        let mut a = account();
        a.positions[0].price = f64::NAN;
        let e = evaluate(
            &trade(Side::Buy, 1.0, 1.0),
            &a,
            &RiskLimits::default(),
            None,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.field, "account.positions[0].price");
        let limits = RiskLimits {
            max_position_pct: 0.0,
            ..RiskLimits::default()
        };
        assert_eq!(limits.check().unwrap_err().field, "max_position_pct");
        let limits = RiskLimits {
            allowed_asset_classes: vec![],
            ..RiskLimits::default()
        };
        assert_eq!(limits.check().unwrap_err().field, "allowed_asset_classes");
        assert!(RiskLimits::default().check().is_ok());
    }
}
