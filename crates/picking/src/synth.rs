//! A seeded synthetic universe: hundreds of stocks over years of NYSE trading days, for demos,
//! tests and the backtest benchmark when real history is too narrow.
//!
//! # Model
//!
//! Daily log return of stock *i* in sector *k* on day *t*:
//! `rᵢₜ = βᵢ·mₜ + γᵢ·sₖₜ + εᵢₜ`, where `m` is the market factor (drift plus noise), `sₖ` an
//! independent factor per sector, `ε` idiosyncratic noise; all three scaled by the day's
//! volatility regime, a two-state Markov chain (calm ×1, stressed ×`stressed_vol_multiplier`).
//! On a crash day the market factor is a fixed fall drawn from `crash_return` and the chain
//! jumps to stressed. Loadings: `β ~ N(1, beta_sd)` clamped to [0.2, 2.2], `γ ~ N(1, 0.2)`;
//! idiosyncratic volatility is lognormal around `idio_vol`.
//!
//! Bars: the return splits into an overnight gap `g = w·r + √(w(1-w))·σ·z` (`w` =
//! `overnight_share`, the share of daily variance that falls overnight) and an intraday move;
//! high and low extend past open/close by `|z|·range_extension·σ`. Volume in dollars is
//! `turnover · 10¹⁰ · (cap/10¹⁰)^volume_cap_elasticity` (cap moves with the price), times
//! `exp(a·u + b·z)` where `u` is the day's standardised |return| (volume rises on big moves).
//! Market caps are lognormal; spreads shrink with size: `spread_at_10b · (cap/10¹⁰)^-0.4 ·
//! exp(0.3z)`. A fraction of symbols get unknown fundamentals so pickers meet `unavailable`.
//!
//! # Calibration
//!
//! Measured on the daily OHLCV of AAPL, GOOG, IBM and MSFT, 2000-03-01 to 2013-03-01, from
//! the PyPI wheel `bokeh-sampledata` (its `stocks.csv.gz`; adjusted closes for returns):
//!
//! | quantity | AAPL | GOOG | IBM | MSFT | used |
//! |---|---|---|---|---|---|
//! | annualised volatility | 0.48 | 0.34 | 0.28 | 0.33 | total ≈ 0.33 for β = 1 |
//! | 21-day vol p10/p50/p90 | .22/.36/.65 | .17/.26/.50 | .11/.20/.46 | .13/.24/.51 | stressed ×2.2 |
//! | mean (high-low)/close | 0.034 | 0.024 | 0.021 | 0.024 | ≈ 1.15 σ_daily |
//! | overnight gap sd | 0.016 | 0.013 | 0.010 | 0.012 | ≈ 0.55 σ_daily → w = 0.3 |
//! | sd of detrended log volume | 0.44 | 0.42 | 0.35 | 0.36 | 0.40 total |
//! | corr(abs return, log volume) | 0.43 | 0.46 | 0.45 | 0.38 | 0.42 → a = 0.17, b = 0.36 |
//! | turnover (dollar volume / cap) | ≈ 0.5 %/day for these mega caps | | | | 0.5 % at $10B |
//!
//! Pairwise return correlations are 0.41–0.58 (mean 0.47; all four are technology names, so
//! this is the same-sector level). The equal-weight index of the four spends 15.7 % of days in
//! a high-volatility state (21-day vol above 1.5× its median) in runs of 22 days on average:
//! leave-stressed probability 1/22 ≈ 0.045, enter-stressed 0.045·0.157/0.843 ≈ 0.0085. Its
//! worst days were −11.4 %, −7.2 % and −7.0 % (autumn 2008): crash falls of 6–11 %.
//! With a market factor of 0.19 overall (a broad index of that period), same-sector
//! correlation 0.47 gives a sector factor of 0.12 and idiosyncratic 0.24 overall; dividing by
//! the regime mixture √(0.843 + 0.157·2.2²) ≈ 1.27 gives the calm-state defaults below.
//! Kurtosis of the real series (10–12) comes here from the regimes and crashes only;
//! the spread model and market-cap distribution are assumptions (the sample has neither).

use serde::{Deserialize, Serialize};

use crate::calendar::{Nyse, TradingCalendar};
use crate::date::Date;
use crate::market::{AssetClass, Bar, Interval, Symbol};
use crate::rng::SeededRng;

/// Every knob of the generator; the defaults are the calibration above.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthParams {
    pub seed: u64,
    pub symbols: usize,
    /// The first trading day on or after this date starts the series.
    pub start: Date,
    pub trading_days: usize,
    pub sectors: Vec<String>,
    /// Annual log drift of the market factor.
    pub market_drift: f64,
    /// Calm-state annualised volatilities.
    pub market_vol: f64,
    pub sector_vol: f64,
    /// Median idiosyncratic volatility; its log is spread by `idio_vol_dispersion`.
    pub idio_vol: f64,
    pub idio_vol_dispersion: f64,
    pub beta_sd: f64,
    pub stressed_vol_multiplier: f64,
    pub p_enter_stressed: f64,
    pub p_leave_stressed: f64,
    pub crash_days: usize,
    /// The market factor's log return on a crash day is uniform in this range.
    pub crash_return: (f64, f64),
    /// Lognormal market cap: median and sd of its natural log.
    pub market_cap_median: f64,
    pub market_cap_log_sd: f64,
    pub turnover: f64,
    pub volume_cap_elasticity: f64,
    pub volume_abs_return_loading: f64,
    pub volume_noise: f64,
    pub overnight_share: f64,
    pub range_extension: f64,
    pub spread_at_10b: f64,
    pub initial_price_median: f64,
    pub unknown_fundamentals_fraction: f64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            seed: 42,
            symbols: 500,
            start: Date::from_ymd(2021, 1, 4).expect("valid"),
            trading_days: 756,
            sectors: [
                "Communication Services",
                "Consumer Discretionary",
                "Consumer Staples",
                "Energy",
                "Financials",
                "Health Care",
                "Industrials",
                "Information Technology",
                "Materials",
                "Real Estate",
                "Utilities",
            ]
            .map(String::from)
            .to_vec(),
            market_drift: 0.07,
            market_vol: 0.15,
            sector_vol: 0.097,
            idio_vol: 0.19,
            idio_vol_dispersion: 0.35,
            beta_sd: 0.3,
            stressed_vol_multiplier: 2.2,
            p_enter_stressed: 0.0085,
            p_leave_stressed: 0.045,
            crash_days: 3,
            crash_return: (-0.11, -0.06),
            market_cap_median: 3e9,
            market_cap_log_sd: 1.5,
            turnover: 0.005,
            volume_cap_elasticity: 0.9,
            volume_abs_return_loading: 0.17,
            volume_noise: 0.36,
            overnight_share: 0.3,
            range_extension: 0.3,
            spread_at_10b: 0.0005,
            initial_price_median: 40.0,
            unknown_fundamentals_fraction: 0.03,
        }
    }
}

impl SynthParams {
    /// The same parameters with `start` moved so that the series ends on `last` (or on the
    /// last trading day before it): lines a generated universe up with real history.
    pub fn ending_on(self, last: Date) -> SynthParams {
        let mut start = if Nyse.is_trading_day(last) {
            last
        } else {
            Nyse.previous_trading_day(last)
        };
        for _ in 1..self.trading_days {
            start = Nyse.previous_trading_day(start);
        }
        SynthParams { start, ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Regime {
    Calm,
    Stressed,
}

/// A generated universe: every series runs over `days`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyntheticUniverse {
    pub days: Vec<Date>,
    pub regimes: Vec<Regime>,
    pub crash_days: Vec<Date>,
    /// A market index (β = 1, no sector or idiosyncratic part), as an ETF.
    pub index: Symbol,
    pub index_bars: Vec<Bar>,
    pub symbols: Vec<Symbol>,
    /// `bars[i]` belongs to `symbols[i]`, one bar per day.
    pub bars: Vec<Vec<Bar>>,
}

/// Ticker of the generated index.
pub const INDEX_TICKER: &str = "SYNIDX";

/// `SYN001`, `SYN002`, …: obviously not real listings.
pub fn synthetic_ticker(i: usize) -> String {
    format!("SYN{:03}", i + 1)
}

/// Generates the universe. The same parameters give the same universe on every platform;
/// symbol *i* draws from its own stream, so it does not change when `symbols` does.
pub fn generate(p: &SynthParams) -> SyntheticUniverse {
    let days = trading_days(p.start, p.trading_days);
    let n = days.len();
    let daily = |annual: f64| annual / 252f64.sqrt();
    let mut rng = SeededRng::with_stream(p.seed, 0);

    // Regimes and crashes first: every series shares them.
    let mut regimes = Vec::with_capacity(n);
    let mut stressed = false;
    let mut crash_days: Vec<usize> = Vec::new();
    let first_crash = n.min(20); // keep the first month calm so indicators have history
    while crash_days.len() < p.crash_days.min(n - first_crash) {
        let d = first_crash + rng.below(n - first_crash);
        if !crash_days.contains(&d) {
            crash_days.push(d);
        }
    }
    crash_days.sort_unstable();
    let mut market = Vec::with_capacity(n);
    for t in 0..n {
        let switch = if stressed {
            p.p_leave_stressed
        } else {
            p.p_enter_stressed
        };
        if rng.bernoulli(switch) {
            stressed = !stressed;
        }
        let crash = crash_days.contains(&t);
        stressed |= crash;
        regimes.push(if stressed {
            Regime::Stressed
        } else {
            Regime::Calm
        });
        let scale = if stressed {
            p.stressed_vol_multiplier
        } else {
            1.0
        };
        let noise = rng.normal();
        market.push(if crash {
            p.crash_return.0 + (p.crash_return.1 - p.crash_return.0) * rng.uniform()
        } else {
            p.market_drift / 252.0 + scale * daily(p.market_vol) * noise
        });
    }
    let scales: Vec<f64> = regimes
        .iter()
        .map(|r| {
            if *r == Regime::Stressed {
                p.stressed_vol_multiplier
            } else {
                1.0
            }
        })
        .collect();
    let sector_factors: Vec<Vec<f64>> = (0..p.sectors.len())
        .map(|_| {
            scales
                .iter()
                .map(|s| s * daily(p.sector_vol) * rng.normal())
                .collect()
        })
        .collect();

    let mut index = Symbol::new(INDEX_TICKER);
    index.name = Some("Synthetic market index".into());
    index.asset_class = Some(AssetClass::Etf);
    index.exchange = Some("SYNTH".into());
    index.beta = Some(1.0);
    index.generated = true;
    let index_loadings = Loadings {
        beta: 1.0,
        gamma: 0.0,
        idio_daily: 0.0,
    };
    let index_bars = bars_for(
        p,
        &mut SeededRng::with_stream(p.seed, 1),
        INDEX_TICKER,
        &days,
        &index_loadings,
        100.0,
        1e12,
        |t| market[t],
        &scales,
        daily(p.market_vol),
    );

    let mut symbols = Vec::with_capacity(p.symbols);
    let mut all_bars = Vec::with_capacity(p.symbols);
    for i in 0..p.symbols {
        let mut r = SeededRng::with_stream(p.seed, 2 + i as u64);
        let ticker = synthetic_ticker(i);
        let sector = r.below(p.sectors.len().max(1));
        let loadings = Loadings {
            beta: (1.0 + p.beta_sd * r.normal()).clamp(0.2, 2.2),
            gamma: (1.0 + 0.2 * r.normal()).max(0.0),
            idio_daily: daily(p.idio_vol * (p.idio_vol_dispersion * r.normal()).exp()),
        };
        let cap0 = p.market_cap_median * (p.market_cap_log_sd * r.normal()).exp();
        let price0 = (p.initial_price_median * (0.8 * r.normal()).exp()).max(1.0);
        let spread_noise = (0.3 * r.normal()).exp();
        let unknown = r.bernoulli(p.unknown_fundamentals_fraction);
        let calm_sd = (loadings.beta.powi(2) * daily(p.market_vol).powi(2)
            + loadings.gamma.powi(2) * daily(p.sector_vol).powi(2)
            + loadings.idio_daily.powi(2))
        .sqrt();
        let sector_series = sector_factors.get(sector);
        let bars = bars_for(
            p,
            &mut r,
            &ticker,
            &days,
            &loadings,
            price0,
            cap0,
            |t| loadings.beta * market[t] + loadings.gamma * sector_series.map_or(0.0, |s| s[t]),
            &scales,
            calm_sd,
        );
        let last_close = bars.last().map_or(price0, |b| b.close);
        let cap = cap0 * last_close / price0;
        let sector_name = p.sectors.get(sector).cloned();
        symbols.push(Symbol {
            ticker: ticker.clone(),
            name: Some(format!(
                "Synthetic {} {:03}",
                sector_name.as_deref().unwrap_or("Company"),
                i + 1
            )),
            asset_class: Some(AssetClass::Stock),
            exchange: Some("SYNTH".into()),
            sector: sector_name,
            market_cap: (!unknown).then_some(cap),
            beta: (!unknown).then_some(loadings.beta),
            avg_spread: (!unknown).then(|| {
                (p.spread_at_10b * (cap / 1e10).powf(-0.4) * spread_noise).clamp(0.0001, 0.02)
            }),
            generated: true,
        });
        all_bars.push(bars);
    }
    SyntheticUniverse {
        crash_days: crash_days.iter().map(|&t| days[t]).collect(),
        days,
        regimes,
        index,
        index_bars,
        symbols,
        bars: all_bars,
    }
}

struct Loadings {
    beta: f64,
    gamma: f64,
    idio_daily: f64,
}

/// The first `count` NYSE trading days on or after `start`.
fn trading_days(start: Date, count: usize) -> Vec<Date> {
    let mut days = Vec::with_capacity(count);
    let mut d = if Nyse.is_trading_day(start) {
        start
    } else {
        Nyse.next_trading_day(start)
    };
    while days.len() < count {
        days.push(d);
        d = Nyse.next_trading_day(d);
    }
    days
}

/// One symbol's bars: `common(t)` is its factor return, to which idiosyncratic noise is added.
#[allow(clippy::too_many_arguments)]
fn bars_for(
    p: &SynthParams,
    rng: &mut SeededRng,
    ticker: &str,
    days: &[Date],
    loadings: &Loadings,
    price0: f64,
    cap0: f64,
    common: impl Fn(usize) -> f64,
    scales: &[f64],
    calm_sd: f64,
) -> Vec<Bar> {
    let w = p.overnight_share;
    let (a, b) = (p.volume_abs_return_loading, p.volume_noise);
    // E|z| and sd|z| of a standard normal, to standardise the day's absolute move.
    let (abs_mean, abs_sd) = (0.797_884_560_8, 0.602_810_274_5);
    let mut prev_close = price0;
    let mut out = Vec::with_capacity(days.len());
    for (t, day) in days.iter().enumerate() {
        let sd = scales[t] * calm_sd;
        let r = common(t) + scales[t] * loadings.idio_daily * rng.normal();
        let gap = w * r + (w * (1.0 - w)).sqrt() * sd * rng.normal();
        let open = prev_close * gap.exp();
        let close = prev_close * r.exp();
        let high = open.max(close) * (p.range_extension * sd * rng.normal().abs()).exp();
        let low = open.min(close) * (-p.range_extension * sd * rng.normal().abs()).exp();
        let cap = cap0 * close / price0;
        let dollar_volume = p.turnover * 1e10 * (cap / 1e10).powf(p.volume_cap_elasticity);
        let surprise = ((r.abs() / sd.max(1e-12)) - abs_mean) / abs_sd;
        let volume = (dollar_volume / close * (a * surprise + b * rng.normal()).exp()).round();
        out.push(Bar {
            symbol: ticker.to_string(),
            interval: Interval::Day,
            time: day.midnight_utc(),
            open,
            high,
            low,
            close,
            volume,
        });
        prev_close = close;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::{log_returns, realised_volatility};
    use crate::market::BarRow;

    fn small() -> SynthParams {
        SynthParams {
            symbols: 60,
            ..SynthParams::default()
        }
    }

    #[test]
    fn same_seed_same_universe_other_seed_differs() {
        let a = generate(&small());
        assert_eq!(a, generate(&small()));
        let b = generate(&SynthParams {
            seed: 43,
            ..small()
        });
        assert_ne!(a.bars[0][100].close, b.bars[0][100].close);
        // Symbol streams are independent of the universe size.
        let fewer = generate(&SynthParams {
            symbols: 5,
            ..small()
        });
        assert_eq!(fewer.bars[4], a.bars[4]);
        assert_eq!(fewer.symbols[4], a.symbols[4]);
    }

    #[test]
    fn shape_calendar_and_validity() {
        let u = generate(&small());
        assert_eq!(u.days.len(), 756);
        assert_eq!(u.days[0].to_string(), "2021-01-04");
        for pair in u.days.windows(2) {
            assert_eq!(Nyse.next_trading_day(pair[0]), pair[1]);
        }
        assert!(
            !u.days.contains(&"2024-03-29".parse().unwrap()),
            "Good Friday"
        );
        assert_eq!(u.symbols.len(), 60);
        assert_eq!(u.crash_days.len(), 3);
        assert!(u.symbols.iter().all(|s| s.generated) && u.index.generated);
        for (s, bars) in u.symbols.iter().zip(&u.bars) {
            assert_eq!(bars.len(), 756);
            for b in bars {
                let row = BarRow {
                    symbol: b.symbol.clone(),
                    interval: "1d".into(),
                    time: b.time,
                    open: b.open,
                    high: b.high,
                    low: b.low,
                    close: b.close,
                    volume: b.volume,
                };
                assert!(
                    row.validate().is_ok(),
                    "{} {:?}: {:?}",
                    s.ticker,
                    b,
                    row.validate()
                );
            }
        }
    }

    #[test]
    fn ending_on_lines_the_series_up_with_a_last_day() {
        let last: Date = "2013-03-01".parse().unwrap();
        let u = generate(
            &SynthParams {
                symbols: 2,
                ..SynthParams::default()
            }
            .ending_on(last),
        );
        assert_eq!(u.days.len(), 756);
        assert_eq!(u.days[755], last);
        assert_eq!(u.bars[1][755].date(), last);
        // A Sunday: the Friday before ends it.
        let p = SynthParams::default().ending_on("2013-03-03".parse().unwrap());
        assert_eq!(generate(&SynthParams { symbols: 1, ..p }).days[755], last);
    }

    fn corr(x: &[f64], y: &[f64]) -> f64 {
        let (mx, my) = (crate::indicators::mean(x), crate::indicators::mean(y));
        let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    }

    #[test]
    fn statistics_land_near_the_calibration() {
        let u = generate(&SynthParams {
            symbols: 120,
            ..SynthParams::default()
        });
        let closes: Vec<Vec<f64>> = u
            .bars
            .iter()
            .map(|b| b.iter().map(|x| x.close).collect())
            .collect();
        let mut vols: Vec<f64> = closes
            .iter()
            .map(|c| realised_volatility(c, c.len() - 1).unwrap())
            .collect();
        vols.sort_by(f64::total_cmp);
        let median_vol = vols[vols.len() / 2];
        assert!(
            (0.25..0.45).contains(&median_vol),
            "median volatility {median_vol}"
        );

        let returns: Vec<Vec<f64>> = closes.iter().map(|c| log_returns(c)).collect();
        let (mut same, mut other) = (vec![], vec![]);
        for i in 0..40 {
            for j in i + 1..40 {
                let c = corr(&returns[i], &returns[j]);
                if u.symbols[i].sector == u.symbols[j].sector {
                    same.push(c)
                } else {
                    other.push(c)
                }
            }
        }
        let (same, other) = (
            crate::indicators::mean(&same),
            crate::indicators::mean(&other),
        );
        assert!(
            same > other + 0.05,
            "sector factor: same {same} vs other {other}"
        );
        assert!(
            (0.2..0.6).contains(&other),
            "market factor correlation {other}"
        );

        // Volume follows size: log cap against log mean dollar volume.
        let (mut caps, mut dollar) = (vec![], vec![]);
        for (s, bars) in u.symbols.iter().zip(&u.bars) {
            if let Some(cap) = s.market_cap {
                caps.push(cap.ln());
                let dv = bars.iter().map(|b| b.close * b.volume).sum::<f64>() / bars.len() as f64;
                dollar.push(dv.ln());
            }
        }
        assert!(corr(&caps, &dollar) > 0.9, "{}", corr(&caps, &dollar));
        assert!(u.regimes.contains(&Regime::Stressed) && u.regimes.contains(&Regime::Calm));
    }
    /// The calibration table's per-series targets (module doc), each measured on the
    /// generated bars the way it was measured on the real ones, as medians over symbols.
    #[test]
    fn bar_shape_and_volume_land_near_the_calibration() {
        let u = generate(&SynthParams {
            symbols: 120,
            ..SynthParams::default()
        });
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let sd = |x: &[f64]| {
            let m = crate::indicators::mean(x);
            (x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
        };
        let (mut range, mut gap, mut vol_sd, mut vol_corr) = (vec![], vec![], vec![], vec![]);
        for bars in &u.bars {
            let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
            let r = log_returns(&closes);
            let daily_sd = sd(&r);
            let mean_range =
                bars.iter().map(|b| (b.high - b.low) / b.close).sum::<f64>() / bars.len() as f64;
            range.push(mean_range / daily_sd);
            let gaps: Vec<f64> = bars
                .windows(2)
                .map(|w| (w[1].open / w[0].close).ln())
                .collect();
            gap.push(sd(&gaps) / daily_sd);
            // Log volume less its linear trend (the real series' volume drifted over years).
            let lv: Vec<f64> = bars[1..].iter().map(|b| b.volume.ln()).collect();
            let t: Vec<f64> = (0..lv.len()).map(|i| i as f64).collect();
            let (mt, mv) = (crate::indicators::mean(&t), crate::indicators::mean(&lv));
            let slope = t
                .iter()
                .zip(&lv)
                .map(|(a, b)| (a - mt) * (b - mv))
                .sum::<f64>()
                / t.iter().map(|a| (a - mt).powi(2)).sum::<f64>();
            let detrended: Vec<f64> = t
                .iter()
                .zip(&lv)
                .map(|(a, b)| b - slope * (a - mt))
                .collect();
            vol_sd.push(sd(&detrended));
            let abs_r: Vec<f64> = r.iter().map(|x| x.abs()).collect();
            vol_corr.push(corr(&abs_r, &detrended));
        }
        let stressed = u.regimes.iter().filter(|r| **r == Regime::Stressed).count() as f64
            / u.regimes.len() as f64;
        let (range, gap, vol_sd, vol_corr) = (med(range), med(gap), med(vol_sd), med(vol_corr));
        // Targets from the table: range ≈ 1.15 σ, gap ≈ 0.55 σ, log-volume sd 0.40,
        // corr(|r|, log volume) 0.42, 15.7 % of days stressed (one seeded chain: wider).
        let checks = [
            ("mean (high-low)/close in daily sds", range, 1.15, 0.15),
            ("overnight gap sd in daily sds", gap, 0.55, 0.15),
            ("sd of detrended log volume", vol_sd, 0.40, 0.15),
            ("corr(abs return, log volume)", vol_corr, 0.42, 0.25),
            ("share of stressed days", stressed, 0.157, 0.5),
        ];
        for (what, got, target, tolerance) in checks {
            assert!(
                (got - target).abs() <= tolerance * target,
                "{what}: {got:.3}, calibrated to {target} (±{:.0} %)",
                tolerance * 100.0
            );
        }
    }
}
