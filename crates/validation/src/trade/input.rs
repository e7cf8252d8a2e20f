//! What a trade validation reads: the trade, the account, the limits, similar past trades.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "ValidatorTradeSide")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposedTrade {
    pub symbol: String,
    pub side: Side,
    pub quantity: f64,
    pub limit_price: f64,
    /// The protective stop price, if any.
    #[serde(default)]
    pub stop: Option<f64>,
    #[serde(default = "stock")]
    pub asset_class: String,
    #[serde(default)]
    pub sector: Option<String>,
    /// Average daily volume in shares (units), for the liquidity limit.
    #[serde(default)]
    pub average_daily_volume: Option<f64>,
}

fn stock() -> String {
    "stock".into()
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ValidatorPosition")]
pub struct Position {
    pub symbol: String,
    /// Signed: negative is short.
    pub quantity: f64,
    /// The current price per unit.
    pub price: f64,
    #[serde(default)]
    pub sector: Option<String>,
    #[serde(default = "stock")]
    pub asset_class: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ValidatorAccount")]
pub struct Account {
    pub equity: f64,
    pub cash: f64,
    #[serde(default)]
    pub positions: Vec<Position>,
    /// Today's profit or loss so far (negative is a loss).
    #[serde(default)]
    pub day_pnl: f64,
    /// The highest equity so far, for drawdown.
    #[serde(default)]
    pub peak_equity: Option<f64>,
}

/// A tenant's hard limits (percentages are of equity) and warning thresholds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RiskLimits {
    pub max_position_pct: f64,
    pub max_gross_exposure_pct: f64,
    pub max_net_exposure_pct: f64,
    pub max_sector_pct: f64,
    /// Today's loss as a percentage of the day's starting equity.
    pub daily_loss_limit_pct: f64,
    pub max_drawdown_pct: f64,
    /// The largest order as a percentage of the symbol's average daily volume.
    pub max_order_adv_pct: f64,
    pub allowed_asset_classes: Vec<String>,
    /// Warning: a stop further than this from the limit price.
    pub max_stop_distance_pct: f64,
    /// Warning: a position or sector at this fraction of its limit or more.
    pub concentration_warning_ratio: f64,
    /// Warning: past losing trades at least this similar (cosine) to the proposed one.
    pub similarity_threshold: f64,
    /// How many similar losing trades to show.
    pub similar_k: u32,
}

impl Default for RiskLimits {
    fn default() -> Self {
        Self {
            max_position_pct: 10.0,
            max_gross_exposure_pct: 150.0,
            max_net_exposure_pct: 100.0,
            max_sector_pct: 30.0,
            daily_loss_limit_pct: 3.0,
            max_drawdown_pct: 20.0,
            max_order_adv_pct: 1.0,
            allowed_asset_classes: vec!["stock".into(), "etf".into()],
            max_stop_distance_pct: 8.0,
            concentration_warning_ratio: 0.8,
            similarity_threshold: 0.85,
            similar_k: 5,
        }
    }
}

/// A past trade found similar to the proposed one, with its outcome.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SimilarTrade {
    pub id: String,
    pub symbol: String,
    pub similarity: f64,
    pub pnl: f64,
    #[serde(default)]
    pub closed_at: Option<String>,
}

/// A request field that is present but unusable.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidInput {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidInput {
    InvalidInput {
        field: field.into(),
        message: message.into(),
    }
}

fn positive(field: &str, x: f64) -> Result<(), InvalidInput> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("`{field}` must be a positive number"),
        ))
    }
}

fn symbol(field: &str, s: &str) -> Result<(), InvalidInput> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "a symbol is 1-32 letters, digits or . - _ : /",
        ))
    }
}

impl ProposedTrade {
    pub fn check(&self) -> Result<(), InvalidInput> {
        symbol("trade.symbol", &self.symbol)?;
        positive("trade.quantity", self.quantity)?;
        positive("trade.limit_price", self.limit_price)?;
        if let Some(stop) = self.stop {
            positive("trade.stop", stop)?;
            let wrong_side = match self.side {
                Side::Buy => stop >= self.limit_price,
                Side::Sell => stop <= self.limit_price,
            };
            if wrong_side {
                return Err(invalid(
                    "trade.stop",
                    "a buy's stop is below its limit price and a sell's above",
                ));
            }
        }
        if let Some(adv) = self.average_daily_volume {
            positive("trade.average_daily_volume", adv)?;
        }
        Ok(())
    }
}

impl Account {
    pub fn check(&self) -> Result<(), InvalidInput> {
        positive("account.equity", self.equity)?;
        if !self.cash.is_finite() {
            return Err(invalid("account.cash", "`account.cash` must be a number"));
        }
        if !self.day_pnl.is_finite() || self.equity - self.day_pnl <= 0.0 {
            return Err(invalid(
                "account.day_pnl",
                "`account.day_pnl` must be a number smaller than equity",
            ));
        }
        if let Some(peak) = self.peak_equity {
            positive("account.peak_equity", peak)?;
        }
        for (i, p) in self.positions.iter().enumerate() {
            symbol(&format!("account.positions[{i}].symbol"), &p.symbol)?;
            positive(&format!("account.positions[{i}].price"), p.price)?;
            if !p.quantity.is_finite() {
                return Err(invalid(
                    format!("account.positions[{i}].quantity"),
                    "a quantity is a number (negative for short)",
                ));
            }
        }
        Ok(())
    }
}

impl RiskLimits {
    pub fn check(&self) -> Result<(), InvalidInput> {
        let pct = |field: &str, x: f64, max: f64| -> Result<(), InvalidInput> {
            if x.is_finite() && x > 0.0 && x <= max {
                Ok(())
            } else {
                Err(invalid(
                    field,
                    format!("`{field}` must be above 0 and at most {max}"),
                ))
            }
        };
        pct("max_position_pct", self.max_position_pct, 100.0)?;
        pct(
            "max_gross_exposure_pct",
            self.max_gross_exposure_pct,
            1000.0,
        )?;
        pct("max_net_exposure_pct", self.max_net_exposure_pct, 1000.0)?;
        pct("max_sector_pct", self.max_sector_pct, 1000.0)?;
        pct("daily_loss_limit_pct", self.daily_loss_limit_pct, 100.0)?;
        pct("max_drawdown_pct", self.max_drawdown_pct, 100.0)?;
        pct("max_order_adv_pct", self.max_order_adv_pct, 100.0)?;
        pct("max_stop_distance_pct", self.max_stop_distance_pct, 100.0)?;
        pct(
            "concentration_warning_ratio",
            self.concentration_warning_ratio,
            1.0,
        )?;
        pct("similarity_threshold", self.similarity_threshold, 1.0)?;
        if !(1..=50).contains(&self.similar_k) {
            return Err(invalid("similar_k", "`similar_k` must be 1 to 50"));
        }
        if self.allowed_asset_classes.is_empty() {
            return Err(invalid(
                "allowed_asset_classes",
                "at least one asset class must be allowed",
            ));
        }
        for (i, c) in self.allowed_asset_classes.iter().enumerate() {
            if c.is_empty()
                || c.len() > 32
                || !c.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                return Err(invalid(
                    format!("allowed_asset_classes[{i}]"),
                    "an asset class is 1-32 lowercase letters or _",
                ));
            }
        }
        Ok(())
    }
}
