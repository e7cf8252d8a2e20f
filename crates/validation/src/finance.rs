//! Financial functions with spreadsheet semantics (Excel, LibreOffice): signs follow the cash
//! direction (money paid out is negative), `type` 0 means payments at the end of each period
//! and 1 at the start, and `NPV` discounts its first value by one period.
//!
//! Every iterative solver (IRR, XIRR, RATE) is bounded: Newton's method from the guess, then a
//! bracketed bisection, and `None` (the spreadsheet's `#NUM!`) when neither finds a root.

/// A spreadsheet date serial's day count between two dates, as XNPV uses it.
const DAYS_PER_YEAR: f64 = 365.0;
const NEWTON_STEPS: usize = 100;
const BISECTION_STEPS: usize = 200;

/// `(1 + rate)^nper`, computed so that tiny rates keep their precision.
fn growth(rate: f64, nper: f64) -> f64 {
    (nper * rate.ln_1p()).exp()
}

/// `((1 + rate)^nper - 1) / rate`: the annuity factor; `nper` when the rate is 0.
fn annuity(rate: f64, nper: f64) -> f64 {
    if rate == 0.0 {
        nper
    } else {
        (nper * rate.ln_1p()).exp_m1() / rate
    }
}

fn when(payment_type: f64) -> f64 {
    if payment_type != 0.0 { 1.0 } else { 0.0 }
}

/// `PMT(rate, nper, pv, [fv], [type])`: the payment per period.
pub fn pmt(rate: f64, nper: f64, pv: f64, fv: f64, payment_type: f64) -> Option<f64> {
    if nper == 0.0 {
        return None;
    }
    let g = growth(rate, nper);
    let a = annuity(rate, nper) * (1.0 + rate * when(payment_type));
    finite(-(pv * g + fv) / a)
}

/// `PV(rate, nper, pmt, [fv], [type])`: the present value.
pub fn pv(rate: f64, nper: f64, pmt: f64, fv: f64, payment_type: f64) -> Option<f64> {
    let g = growth(rate, nper);
    let a = annuity(rate, nper) * (1.0 + rate * when(payment_type));
    finite(-(fv + pmt * a) / g)
}

/// `FV(rate, nper, pmt, [pv], [type])`: the future value.
pub fn fv(rate: f64, nper: f64, pmt: f64, pv: f64, payment_type: f64) -> Option<f64> {
    let g = growth(rate, nper);
    let a = annuity(rate, nper) * (1.0 + rate * when(payment_type));
    finite(-(pv * g + pmt * a))
}

/// `RATE(nper, pmt, pv, [fv], [type], [guess])`: the rate per period that makes the
/// annuity's value zero.
pub fn rate(nper: f64, pmt: f64, pv: f64, fv: f64, payment_type: f64, guess: f64) -> Option<f64> {
    if nper <= 0.0 {
        return None;
    }
    let w = when(payment_type);
    let f = |r: f64| pv * growth(r, nper) + pmt * (1.0 + r * w) * annuity(r, nper) + fv;
    solve(f, guess)
}

/// `NPV(rate, value1, …)`: every value is discounted, the first by one period. (numpy-financial's
/// `npv` does not discount its first value: `NPV(r, v…) = npf.npv(r, [0, v…])`.)
pub fn npv(rate: f64, values: &[f64]) -> Option<f64> {
    if rate == -1.0 {
        return None;
    }
    let mut total = 0.0;
    for (i, v) in values.iter().enumerate() {
        total += v / growth(rate, (i + 1) as f64);
    }
    finite(total)
}

/// `IRR(values, [guess])`: the rate at which the flows' value at the first flow is zero.
pub fn irr(values: &[f64], guess: f64) -> Option<f64> {
    if !has_both_signs(values) {
        return None;
    }
    let f = |r: f64| {
        values
            .iter()
            .enumerate()
            .map(|(t, v)| v / growth(r, t as f64))
            .sum::<f64>()
    };
    solve(f, guess)
}

/// `XNPV(rate, values, dates)`: flows discounted by actual days over 365 from the first date.
pub fn xnpv(rate: f64, values: &[f64], dates: &[f64]) -> Option<f64> {
    if values.len() != dates.len() || values.is_empty() || rate <= -1.0 {
        return None;
    }
    let start = dates[0].trunc();
    let mut total = 0.0;
    for (v, d) in values.iter().zip(dates) {
        let days = d.trunc() - start;
        if days < 0.0 {
            return None;
        }
        total += v / growth(rate, days / DAYS_PER_YEAR);
    }
    finite(total)
}

/// `XIRR(values, dates, [guess])`: the rate at which XNPV is zero.
pub fn xirr(values: &[f64], dates: &[f64], guess: f64) -> Option<f64> {
    if values.len() != dates.len() || !has_both_signs(values) {
        return None;
    }
    let start = dates[0].trunc();
    if dates.iter().any(|d| d.trunc() < start) {
        return None;
    }
    let f = |r: f64| {
        values
            .iter()
            .zip(dates)
            .map(|(v, d)| v / growth(r, (d.trunc() - start) / DAYS_PER_YEAR))
            .sum::<f64>()
    };
    solve(f, guess)
}

fn has_both_signs(values: &[f64]) -> bool {
    values.iter().any(|v| *v > 0.0) && values.iter().any(|v| *v < 0.0)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// A root of `f` on rates above -1: Newton's method (numeric derivative) from `guess`, then
/// bisection over the first sign change found scanning outwards from the guess.
fn solve(f: impl Fn(f64) -> f64, guess: f64) -> Option<f64> {
    if let Some(r) = newton(&f, guess) {
        return Some(r);
    }
    let (lo, hi) = bracket(&f, guess)?;
    bisect(&f, lo, hi)
}

fn newton(f: &impl Fn(f64) -> f64, guess: f64) -> Option<f64> {
    let mut r = guess;
    for _ in 0..NEWTON_STEPS {
        let y = f(r);
        if !y.is_finite() {
            return None;
        }
        let h = 1e-7 * r.abs().max(1e-3);
        let d = (f(r + h) - f(r - h)) / (2.0 * h);
        if d == 0.0 || !d.is_finite() {
            return None;
        }
        let next = r - y / d;
        if !next.is_finite() || next <= -1.0 {
            return None;
        }
        if (next - r).abs() <= 1e-14 * next.abs().max(1.0) {
            return polish(f, next);
        }
        r = next;
    }
    None
}

/// A few secant steps from a Newton root: the numeric derivative limits Newton's last digits.
fn polish(f: &impl Fn(f64) -> f64, r: f64) -> Option<f64> {
    let (mut a, mut b) = (r, r * (1.0 + 1e-9) + 1e-12);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..8 {
        if fb == fa {
            break;
        }
        let c = b - fb * (b - a) / (fb - fa);
        if !c.is_finite() {
            break;
        }
        (a, fa) = (b, fb);
        b = c;
        fb = f(b);
        if fb == 0.0 || (b - a).abs() <= f64::EPSILON * b.abs().max(1e-300) {
            break;
        }
    }
    let best = if f(b).abs() <= f(r).abs() { b } else { r };
    finite(best)
}

/// The first pair of rates around a sign change of `f`, scanning away from the guess.
fn bracket(f: &impl Fn(f64) -> f64, guess: f64) -> Option<(f64, f64)> {
    let mut grid: Vec<f64> = Vec::new();
    let mut step = 0.01;
    let start = guess.max(-0.99);
    grid.push(start);
    let (mut up, mut down) = (start, start);
    while up < 1e6 || down > -0.999_999 {
        up += step;
        down = (down - step).max(-0.999_999_999);
        grid.push(up);
        grid.push(down);
        step *= 1.25;
    }
    let mut points: Vec<(f64, f64)> = grid.iter().map(|&r| (r, f(r))).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.dedup_by(|a, b| a.0 == b.0);
    // Of all sign changes, the one nearest the guess.
    points
        .windows(2)
        .filter(|w| w[0].1.is_finite() && w[1].1.is_finite() && w[0].1.signum() != w[1].1.signum())
        .map(|w| (w[0].0, w[1].0))
        .min_by(|a, b| {
            let da = (a.0 - guess).abs().min((a.1 - guess).abs());
            let db = (b.0 - guess).abs().min((b.1 - guess).abs());
            da.total_cmp(&db)
        })
}

fn bisect(f: &impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> Option<f64> {
    let mut flo = f(lo);
    for _ in 0..BISECTION_STEPS {
        let mid = 0.5 * (lo + hi);
        let fm = f(mid);
        if fm == 0.0 || (hi - lo).abs() <= f64::EPSILON * mid.abs().max(1e-300) {
            return finite(mid);
        }
        if fm.signum() == flo.signum() {
            lo = mid;
            flo = fm;
        } else {
            hi = mid;
        }
    }
    finite(0.5 * (lo + hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    #[test]
    fn annuities_match_their_closed_forms() {
        // A 30-year mortgage of 200,000 at 6 % a year, paid monthly.
        let p = pmt(0.005, 360.0, 200_000.0, 0.0, 0.0).unwrap();
        assert!(close(p, -1199.101050304083), "{p}");
        // Zero rate: straight division.
        assert_eq!(pmt(0.0, 10.0, 1000.0, 0.0, 0.0), Some(-100.0));
        assert_eq!(fv(0.0, 10.0, -100.0, 0.0, 0.0), Some(1000.0));
        assert_eq!(pv(0.0, 10.0, -100.0, 0.0, 0.0), Some(1000.0));
        // Payments at the start of the period are worth one period more.
        let end = pv(0.05, 10.0, -100.0, 0.0, 0.0).unwrap();
        let start = pv(0.05, 10.0, -100.0, 0.0, 1.0).unwrap();
        assert!(close(start, end * 1.05), "{start} vs {end}");
        // RATE inverts PMT.
        let r = rate(360.0, p, 200_000.0, 0.0, 0.0, 0.1).unwrap();
        assert!(close(r, 0.005), "{r}");
        assert_eq!(pmt(0.05, 0.0, 100.0, 0.0, 0.0), None);
    }

    #[test]
    fn npv_discounts_the_first_value() {
        let v = npv(0.1, &[110.0]).unwrap();
        assert!(close(v, 100.0), "{v}");
        assert_eq!(npv(-1.0, &[1.0]), None);
    }

    #[test]
    fn irr_and_xirr_find_their_roots_or_refuse() {
        let r = irr(&[-100.0, 39.0, 59.0, 55.0, 20.0], 0.1).unwrap();
        assert!((r - 0.28095).abs() < 1e-5, "{r}");
        assert_eq!(irr(&[100.0, 10.0], 0.1), None, "no sign change, no IRR");
        // One year of 365 days at 10 %.
        let x = xirr(&[-100.0, 110.0], &[45000.0, 45365.0], 0.1).unwrap();
        assert!(close(x, 0.1), "{x}");
        let v = xnpv(0.1, &[-100.0, 110.0], &[45000.0, 45365.0]).unwrap();
        assert!(v.abs() < 1e-9, "{v}");
        assert_eq!(
            xnpv(0.1, &[1.0, 2.0], &[10.0, 5.0]),
            None,
            "dates before the start"
        );
    }

    #[test]
    fn solvers_fall_back_to_bisection_from_a_bad_guess() {
        // From a guess far away Newton overshoots below -1; the bracket still finds 28 %.
        let r = irr(&[-100.0, 39.0, 59.0, 55.0, 20.0], 50.0).unwrap();
        assert!((r - 0.28095).abs() < 1e-5, "{r}");
    }
}
