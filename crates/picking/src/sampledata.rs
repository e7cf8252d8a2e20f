//! Real daily history: `stocks.csv` of the PyPI wheel `bokeh_sampledata` (AAPL, GOOG, IBM,
//! MSFT and FB, 2000-03-01 to 2013-03-01), which `cargo xtask setup` extracts to
//! [`STOCKS_CSV`] under the state directory (`.tessera/`).
//!
//! The file's columns are `Ticker,Date,Open,High,Low,Close,Volume,Adj Close`: prices as
//! traded, plus a close adjusted for splits and dividends. As-traded prices show AAPL's 2:1
//! splits as one-day halvings that every volatility and momentum rule would read as crashes,
//! so bars are adjusted: open, high, low and close are scaled by `Adj Close / Close` of their
//! day and volume by its inverse, which keeps each day's dollar volume as traded.
//!
//! Symbols are marked real (`generated: false`). The sample carries no market cap, beta or
//! spread, so those stay unknown and the MetricPicker reports these symbols `unavailable`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::date::Date;
use crate::market::{AssetClass, Bar, BarRow, Symbol};

/// Where the extracted file lives, relative to the state directory (`.tessera/`).
pub const STOCKS_CSV: &str = "sampledata/stocks.csv";

/// The wheel it comes from, as `pip` names it.
pub const PACKAGE: &str = "bokeh_sampledata";
pub const VERSION: &str = "2026.1";

/// The file's path inside the wheel (gzip-compressed there).
pub const STOCKS_IN_WHEEL: &str = "bokeh_sampledata/_data/stocks.csv.gz";

/// What is known about the tickers of the sample (today's GICS sectors, primary listings).
const KNOWN: [(&str, &str, &str, &str); 5] = [
    ("AAPL", "Apple Inc.", "NASDAQ", "Information Technology"),
    (
        "GOOG",
        "Alphabet Inc. (Google)",
        "NASDAQ",
        "Communication Services",
    ),
    (
        "IBM",
        "International Business Machines",
        "NYSE",
        "Information Technology",
    ),
    (
        "MSFT",
        "Microsoft Corporation",
        "NASDAQ",
        "Information Technology",
    ),
    (
        "FB",
        "Meta Platforms (Facebook)",
        "NASDAQ",
        "Communication Services",
    ),
];

/// The real series: one symbol per ticker (ascending) and its adjusted daily bars by date.
#[derive(Clone, Debug, PartialEq)]
pub struct RealSeries {
    pub symbols: Vec<Symbol>,
    /// `bars[i]` belongs to `symbols[i]`, ascending by time.
    pub bars: Vec<Vec<Bar>>,
}

impl RealSeries {
    pub fn bar_count(&self) -> usize {
        self.bars.iter().map(Vec::len).sum()
    }

    /// The first and last trading date over every series.
    pub fn span(&self) -> Option<(Date, Date)> {
        let first = self
            .bars
            .iter()
            .filter_map(|b| b.first())
            .map(Bar::date)
            .min()?;
        let last = self
            .bars
            .iter()
            .filter_map(|b| b.last())
            .map(Bar::date)
            .max()?;
        Some((first, last))
    }
}

/// A line of the file that could not be read, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CsvError {}

const COLUMNS: [&str; 8] = [
    "Ticker",
    "Date",
    "Open",
    "High",
    "Low",
    "Close",
    "Volume",
    "Adj Close",
];

/// Parses the file (columns found by name from the header), adjusts each bar and checks it
/// with [`BarRow::validate`]. A duplicate (ticker, date) or a bad value is an error naming
/// the line: the sample is a fixed file, so anything odd means it is not the expected one.
pub fn parse_stocks_csv(text: &str) -> Result<RealSeries, CsvError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let (_, header) = lines.next().ok_or_else(|| CsvError {
        line: 1,
        message: "the file is empty".into(),
    })?;
    let names: Vec<&str> = header
        .trim_end_matches('\r')
        .split(',')
        .map(str::trim)
        .collect();
    let mut at = [0usize; 8];
    for (slot, column) in at.iter_mut().zip(COLUMNS) {
        *slot = names
            .iter()
            .position(|n| *n == column)
            .ok_or_else(|| CsvError {
                line: 1,
                message: format!("no `{column}` column in the header `{header}`"),
            })?;
    }
    let mut by_ticker: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (line, text) in lines {
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let err = |message: String| CsvError { line, message };
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        let field = |k: usize| fields.get(at[k]).copied().unwrap_or("");
        let number = |k: usize| {
            field(k)
                .parse::<f64>()
                .map_err(|_| err(format!("{} `{}` is not a number", COLUMNS[k], field(k))))
        };
        let ticker = field(0).to_string();
        let date: Date = field(1)
            .parse()
            .map_err(|_| err(format!("Date `{}` is not YYYY-MM-DD", field(1))))?;
        let (close, adjusted) = (number(5)?, number(7)?);
        if !(close > 0.0 && adjusted > 0.0 && close.is_finite() && adjusted.is_finite()) {
            return Err(err(format!(
                "Close {close} and Adj Close {adjusted} must be positive"
            )));
        }
        let factor = adjusted / close;
        let row = BarRow {
            symbol: ticker.clone(),
            interval: "1d".into(),
            time: date.midnight_utc(),
            open: number(2)? * factor,
            high: number(3)? * factor,
            low: number(4)? * factor,
            // Scaled like the others (not `adjusted` itself), so equal prices stay equal.
            close: close * factor,
            volume: number(6)? / factor,
        };
        let bar = row.validate().map_err(|e| err(e.to_string()))?;
        if !seen.insert((ticker.clone(), date)) {
            return Err(err(format!("{ticker} {date} appears twice")));
        }
        by_ticker.entry(ticker).or_default().push(bar);
    }
    let mut symbols = Vec::with_capacity(by_ticker.len());
    let mut bars = Vec::with_capacity(by_ticker.len());
    for (ticker, mut series) in by_ticker {
        series.sort_by_key(|b| b.time);
        symbols.push(real_symbol(&ticker));
        bars.push(series);
    }
    Ok(RealSeries { symbols, bars })
}

fn real_symbol(ticker: &str) -> Symbol {
    let mut s = Symbol::new(ticker);
    s.asset_class = Some(AssetClass::Stock);
    if let Some((_, name, exchange, sector)) = KNOWN.iter().find(|k| k.0 == ticker) {
        s.name = Some((*name).into());
        s.exchange = Some((*exchange).into());
        s.sector = Some((*sector).into());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::Interval;

    const SAMPLE: &str = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n\
        AAPL,2000-03-02,127.0,127.94,120.69,122.0,2779100,3.9196750983419\n\
        AAPL,2000-03-01,118.56,132.06,118.5,130.31,9616100,4.186662803811\n\
        IBM,2000-03-01,102.0,105.5,100.06,100.25,10807800,78.5\n";

    #[test]
    fn adjusts_prices_keeps_dollar_volume_and_sorts() {
        let s = parse_stocks_csv(SAMPLE).unwrap();
        let tickers: Vec<&str> = s.symbols.iter().map(|s| s.ticker.as_str()).collect();
        assert_eq!(tickers, ["AAPL", "IBM"]);
        assert_eq!(s.bar_count(), 3);
        let aapl = &s.bars[0];
        assert_eq!(aapl[0].date().to_string(), "2000-03-01");
        assert_eq!(aapl[1].date().to_string(), "2000-03-02");
        let b = &aapl[0];
        let f = 4.186662803811 / 130.31;
        assert!((b.close - 4.186662803811).abs() < 1e-12);
        assert!((b.open - 118.56 * f).abs() < 1e-12);
        assert!((b.high - 132.06 * f).abs() < 1e-12);
        assert!((b.low - 118.5 * f).abs() < 1e-12);
        // Dollar volume as traded: 9,616,100 shares at 130.31.
        assert!((b.volume * b.close - 9_616_100.0 * 130.31).abs() < 1e-3);
        assert_eq!(b.interval, Interval::Day);
        assert_eq!(b.time, Date::from_ymd(2000, 3, 1).unwrap().midnight_utc());
        let span = s.span().unwrap();
        assert_eq!(
            (span.0.to_string(), span.1.to_string()),
            ("2000-03-01".into(), "2000-03-02".into())
        );
    }

    #[test]
    fn equal_prices_stay_equal_after_adjusting() {
        // AAPL 2000-12-14 in the file: the close is the day's low.
        let text = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n\
                    AAPL,2000-12-14,15.03,15.25,14.44,14.44,4702100,0.92787062983701\n";
        let bar = &parse_stocks_csv(text).unwrap().bars[0][0];
        assert_eq!(bar.low, bar.close);
        assert!(bar.high > bar.open && bar.open > bar.close);
    }

    #[test]
    fn symbols_are_real_stocks_with_unknown_fundamentals() {
        let s = parse_stocks_csv(SAMPLE).unwrap();
        let aapl = &s.symbols[0];
        assert!(!aapl.generated);
        assert_eq!(aapl.name.as_deref(), Some("Apple Inc."));
        assert_eq!(aapl.exchange.as_deref(), Some("NASDAQ"));
        assert_eq!(aapl.sector.as_deref(), Some("Information Technology"));
        assert_eq!(aapl.asset_class, Some(AssetClass::Stock));
        assert_eq!(
            (aapl.market_cap, aapl.beta, aapl.avg_spread),
            (None, None, None)
        );
        assert!(aapl.validate().is_ok());
    }

    #[test]
    fn columns_are_found_by_name() {
        let text = "Date,Ticker,Adj Close,Open,High,Low,Close,Volume\n\
                    2000-03-01,IBM,78.5,102.0,105.5,100.06,100.25,10807800\n";
        let s = parse_stocks_csv(text).unwrap();
        assert!((s.bars[0][0].close - 78.5).abs() < 1e-12);
        assert_eq!(s.symbols[0].exchange.as_deref(), Some("NYSE"));
    }

    #[test]
    fn bad_lines_are_named() {
        let missing = parse_stocks_csv("Ticker,Date,Open,High,Low,Close,Volume\n").unwrap_err();
        assert_eq!(missing.line, 1);
        assert!(missing.message.contains("`Adj Close`"), "{missing}");

        let header = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n";
        let cases = [
            (
                "IBM,2000-03-01,x,105.5,100.06,100.25,10807800,78.5",
                "Open `x` is not a number",
            ),
            (
                "IBM,2000-13-01,102,105.5,100.06,100.25,10807800,78.5",
                "Date `2000-13-01`",
            ),
            ("IBM,2000-03-01,102,99,100.06,100.25,10807800,78.5", "high"),
            (
                "IBM,2000-03-01,102,105.5,100.06,0,10807800,78.5",
                "must be positive",
            ),
            ("IBM,2000-03-01,102,105.5,100.06,100.25,-1,78.5", "volume"),
        ];
        for (row, expected) in cases {
            let e = parse_stocks_csv(&format!("{header}{row}\n")).unwrap_err();
            assert_eq!(e.line, 2, "{row}");
            assert!(e.to_string().contains(expected), "{row}: {e}");
        }
        let twice = format!(
            "{header}IBM,2000-03-01,102,105.5,100.06,100.25,1,78.5\n\
             IBM,2000-03-01,102,105.5,100.06,100.25,1,78.5\n"
        );
        let e = parse_stocks_csv(&twice).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "IBM 2000-03-01 appears twice")
        );
        assert_eq!(parse_stocks_csv("").unwrap_err().line, 1);
    }
}
