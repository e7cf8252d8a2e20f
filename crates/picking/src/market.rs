//! Market data: symbols and OHLCV bars, and the validation of an incoming bar row.
//!
//! Daily bars are stamped at 00:00 UTC of their trading date (the exchange's local date);
//! minute bars at the start of their minute. A row that breaks a rule is rejected with the
//! field it broke, so the HTTP layer can answer `{error: {code, message, field}}`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::date::{Date, SECONDS_PER_DAY, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "MarketAssetClass")]
pub enum AssetClass {
    Stock,
    Etf,
    Option,
    Crypto,
}

/// A tradable instrument. Everything past the ticker may be unknown (`None`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "MarketSymbol")]
pub struct Symbol {
    pub ticker: String,
    pub name: Option<String>,
    pub asset_class: Option<AssetClass>,
    pub exchange: Option<String>,
    pub sector: Option<String>,
    /// In the quote currency.
    pub market_cap: Option<f64>,
    pub beta: Option<f64>,
    /// Average bid-ask spread as a fraction of the mid price (0.001 = 10 bp).
    pub avg_spread: Option<f64>,
    /// True for symbols made by [`crate::synth`], never real listings.
    #[serde(default)]
    pub generated: bool,
}

impl Symbol {
    /// A symbol with only its ticker known.
    pub fn new(ticker: impl Into<String>) -> Symbol {
        Symbol {
            ticker: ticker.into(),
            name: None,
            asset_class: None,
            exchange: None,
            sector: None,
            market_cap: None,
            beta: None,
            avg_spread: None,
            generated: false,
        }
    }
}

impl Symbol {
    /// Checks a symbol row: a non-empty ticker without spaces, and known numbers that make
    /// sense (finite; market cap and spread not negative; spread below 1).
    pub fn validate(&self) -> Result<(), FieldError> {
        let t = self.ticker.as_str();
        if t.is_empty() || t.chars().any(char::is_whitespace) {
            return Err(FieldError::new(
                "ticker",
                "ticker must be non-empty without spaces",
            ));
        }
        for (field, value) in [
            ("market_cap", self.market_cap),
            ("beta", self.beta),
            ("avg_spread", self.avg_spread),
        ] {
            match value {
                Some(v) if !v.is_finite() => {
                    return Err(FieldError::new(
                        field,
                        format!("{field} must be a finite number"),
                    ));
                }
                Some(v) if v < 0.0 && field != "beta" => {
                    return Err(FieldError::new(
                        field,
                        format!("{field} must not be negative"),
                    ));
                }
                _ => {}
            }
        }
        if self.avg_spread.is_some_and(|s| s >= 1.0) {
            return Err(FieldError::new(
                "avg_spread",
                "avg_spread is a fraction of price, below 1",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1d")]
    Day,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Minute => "1m",
            Interval::Day => "1d",
        }
    }

    /// The grid a bar time must sit on, in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Interval::Minute => 60,
            Interval::Day => SECONDS_PER_DAY,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Interval, FieldError> {
        match s {
            "1m" => Ok(Interval::Minute),
            "1d" => Ok(Interval::Day),
            other => Err(FieldError::new(
                "interval",
                format!("unknown interval `{other}`; expected `1m` or `1d`"),
            )),
        }
    }
}

/// One validated OHLCV bar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub symbol: String,
    pub interval: Interval,
    /// Start of the bar, seconds since the epoch (UTC); see the module doc for the grid.
    pub time: Timestamp,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl Bar {
    /// The trading date of a daily bar (the UTC day of its stamp).
    pub fn date(&self) -> Date {
        Date::from_timestamp(self.time)
    }
}

/// A bar as it arrives: the interval still a string. [`BarRow::validate`] turns it into a
/// [`Bar`] or names the first field that is wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BarRow {
    pub symbol: String,
    pub interval: String,
    pub time: Timestamp,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// A rule a row broke, with the field to point at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

impl BarRow {
    pub fn validate(&self) -> Result<Bar, FieldError> {
        if self.symbol.trim().is_empty() {
            return Err(FieldError::new("symbol", "symbol must not be empty"));
        }
        let interval: Interval = self.interval.parse()?;
        if self.time.rem_euclid(interval.seconds()) != 0 {
            let grid = match interval {
                Interval::Minute => "a whole minute",
                Interval::Day => "00:00 UTC of the trading date",
            };
            return Err(FieldError::new(
                "time",
                format!("time {} is not on the {interval} grid ({grid})", self.time),
            ));
        }
        for (field, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("volume", self.volume),
        ] {
            if !value.is_finite() {
                return Err(FieldError::new(
                    field,
                    format!("{field} must be a finite number"),
                ));
            }
            if value < 0.0 {
                return Err(FieldError::new(
                    field,
                    format!("{field} must not be negative"),
                ));
            }
        }
        if self.high < self.low {
            return Err(FieldError::new(
                "high",
                format!("high {} is below low {}", self.high, self.low),
            ));
        }
        for (field, value) in [("open", self.open), ("close", self.close)] {
            if value < self.low || value > self.high {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{field} {value} is outside [low {}, high {}]",
                        self.low, self.high
                    ),
                ));
            }
        }
        Ok(Bar {
            symbol: self.symbol.clone(),
            interval,
            time: self.time,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> BarRow {
        BarRow {
            symbol: "AAPL".into(),
            interval: "1d".into(),
            time: "2024-03-28".parse::<Date>().unwrap().midnight_utc(),
            open: 10.0,
            high: 12.0,
            low: 9.0,
            close: 11.0,
            volume: 1000.0,
        }
    }

    fn field_of(r: BarRow) -> String {
        r.validate().unwrap_err().field
    }

    #[test]
    fn a_good_row_becomes_a_bar() {
        let bar = row().validate().unwrap();
        assert_eq!(bar.interval, Interval::Day);
        assert_eq!(bar.date().to_string(), "2024-03-28");
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        assert_eq!(
            field_of(BarRow {
                open: f64::NAN,
                ..row()
            }),
            "open"
        );
        assert_eq!(
            field_of(BarRow {
                close: f64::INFINITY,
                ..row()
            }),
            "close"
        );
        assert_eq!(field_of(BarRow { low: -1.0, ..row() }), "low");
        assert_eq!(
            field_of(BarRow {
                volume: -5.0,
                ..row()
            }),
            "volume"
        );
        assert_eq!(field_of(BarRow { high: 8.0, ..row() }), "high");
        assert_eq!(
            field_of(BarRow {
                open: 12.5,
                ..row()
            }),
            "open"
        );
        assert_eq!(
            field_of(BarRow {
                close: 8.5,
                ..row()
            }),
            "close"
        );
        assert_eq!(
            field_of(BarRow {
                interval: "5m".into(),
                ..row()
            }),
            "interval"
        );
        assert_eq!(
            field_of(BarRow {
                symbol: " ".into(),
                ..row()
            }),
            "symbol"
        );
    }

    #[test]
    fn times_must_sit_on_the_interval_grid() {
        let midnight = row().time;
        assert_eq!(
            field_of(BarRow {
                time: midnight + 3600,
                ..row()
            }),
            "time"
        );
        let minute = BarRow {
            interval: "1m".into(),
            time: midnight + 14 * 3600 + 60,
            ..row()
        };
        assert!(minute.validate().is_ok());
        assert_eq!(
            field_of(BarRow {
                time: minute.time + 30,
                ..minute
            }),
            "time"
        );
    }

    #[test]
    fn symbol_rows_are_checked() {
        let mut s = Symbol::new("BRK.B");
        s.beta = Some(-0.3); // a negative beta is rare but real
        assert!(s.validate().is_ok());
        let field = |s: Symbol| s.validate().unwrap_err().field;
        assert_eq!(field(Symbol::new("")), "ticker");
        assert_eq!(field(Symbol::new("A B")), "ticker");
        assert_eq!(
            field(Symbol {
                market_cap: Some(-1.0),
                ..Symbol::new("X")
            }),
            "market_cap"
        );
        assert_eq!(
            field(Symbol {
                beta: Some(f64::NAN),
                ..Symbol::new("X")
            }),
            "beta"
        );
        assert_eq!(
            field(Symbol {
                avg_spread: Some(1.5),
                ..Symbol::new("X")
            }),
            "avg_spread"
        );
    }

    #[test]
    fn symbols_round_trip_as_json_with_unknowns() {
        let json = r#"{"ticker":"XYZ","name":null,"asset_class":"etf","exchange":null,
            "sector":null,"market_cap":null,"beta":1.2,"avg_spread":null}"#;
        let s: Symbol = serde_json::from_str(json).unwrap();
        assert_eq!(s.asset_class, Some(AssetClass::Etf));
        assert!(!s.generated);
        assert_eq!(s.market_cap, None);
        let iv: Interval = serde_json::from_str("\"1m\"").unwrap();
        assert_eq!(iv, Interval::Minute);
    }
}
