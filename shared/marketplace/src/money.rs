//! Prices: a decimal amount in an ISO 4217 currency, rounded to the currency's minor unit.
//!
//! The currency table and each currency's minor unit come from the `iso_currency` crate (ISO 4217):
//! two decimals for USD and EUR, none for JPY, three for KWD and BHD. Codes without a minor unit
//! (gold, SDR) are not money here. Amounts are `rust_decimal` values, never floats; on the wire
//! they are strings written with exactly the currency's decimals (`"12.50"`, `"1500"`,
//! `"3.250"`), so a client never sees a binary rounding error.

use std::fmt;

use iso_currency::Currency;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// The most a unit price may be, in major units (a tonne at a million is far above any market).
const MAX_AMOUNT: i64 = 1_000_000;

/// An amount of money: `{"amount": "12.50", "currency": "USD"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
#[schema(as = Money, example = json!({"amount": "12.50", "currency": "USD"}))]
pub struct Money {
    #[schema(value_type = String)]
    amount: Decimal,
    #[schema(value_type = String)]
    currency: Currency,
}

/// Why an amount or currency was refused, naming the part (`amount` or `currency`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MoneyError {
    pub field: &'static str,
    pub reason: String,
}

impl Money {
    /// An amount in `currency` (an ISO 4217 code), rounded half away from zero to the currency's
    /// minor unit. Refused: an unknown code, a code without a minor unit, a negative amount or one
    /// above a million.
    pub fn new(amount: Decimal, currency: &str) -> Result<Self, MoneyError> {
        Self::bounded(amount, currency, Decimal::from(MAX_AMOUNT))
    }

    fn bounded(amount: Decimal, currency: &str, max: Decimal) -> Result<Self, MoneyError> {
        let code = Currency::from_code(currency)
            .filter(|c| c.exponent().is_some())
            .ok_or_else(|| MoneyError {
                field: "currency",
                reason: format!("{currency:?} is not an ISO 4217 currency code such as USD"),
            })?;
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(MoneyError {
                field: "amount",
                reason: "must not be negative".into(),
            });
        }
        if amount > max {
            return Err(MoneyError {
                field: "amount",
                reason: format!("must be at most {max}"),
            });
        }
        let decimals = exponent(code);
        let mut amount =
            amount.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
        amount.rescale(decimals);
        Ok(Money {
            amount,
            currency: code,
        })
    }

    /// Parses `{amount, currency}` given as text.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        Self::parse_bounded(amount, currency, Decimal::from(MAX_AMOUNT))
    }

    fn parse_bounded(amount: &str, currency: &str, max: Decimal) -> Result<Self, MoneyError> {
        let text = amount.trim();
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        // Plain decimals only: no exponent, no sign but a minus (refused below), no spaces.
        let plain = !unsigned.is_empty()
            && unsigned.len() <= 24
            && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && unsigned.bytes().filter(|&b| b == b'.').count() <= 1;
        let value: Option<Decimal> = if plain { text.parse().ok() } else { None };
        let value = value.ok_or_else(|| MoneyError {
            field: "amount",
            reason: format!("{amount:?} is not a decimal number such as \"12.50\""),
        })?;
        Money::bounded(value, currency, max)
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The ISO 4217 code.
    pub fn currency(&self) -> &'static str {
        self.currency.code()
    }

    /// The currency's decimals (2 for USD, 0 for JPY, 3 for KWD).
    pub fn decimals(&self) -> u32 {
        exponent(self.currency)
    }

    /// The amount in minor units (cents for USD, yen for JPY, fils for KWD), as payment
    /// providers take it.
    pub fn minor_units(&self) -> i64 {
        let scaled = self.amount * Decimal::from(10_i64.pow(self.decimals()));
        // At most a million major units in at most four decimals: always within i64.
        i64::try_from(scaled.trunc()).unwrap_or(i64::MAX)
    }

    /// `quantity` units at this price, rounded to the minor unit; `None` above i64 minor units.
    pub fn times(&self, quantity: u64) -> Option<Money> {
        let total = self.amount.checked_mul(Decimal::from(quantity))?;
        let mut total =
            total.round_dp_with_strategy(self.decimals(), RoundingStrategy::MidpointAwayFromZero);
        total.rescale(self.decimals());
        Some(Money {
            amount: total,
            currency: self.currency,
        })
    }
}

impl Money {
    /// Nothing, in `currency`'s minor unit (`"0.00"`).
    pub fn zero_like(&self) -> Money {
        let mut amount = Decimal::ZERO;
        amount.rescale(self.decimals());
        Money {
            amount,
            currency: self.currency,
        }
    }

    /// The sum of two amounts in one currency; `None` across currencies or on overflow.
    pub fn plus(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let mut amount = self.amount.checked_add(other.amount)?;
        amount.rescale(self.decimals());
        Some(Money {
            amount,
            currency: self.currency,
        })
    }

    /// `basis_points` ten-thousandths of the amount (a fee of 500 is 5 %), rounded half away
    /// from zero to the currency's minor unit.
    pub fn share(&self, basis_points: u32) -> Option<Money> {
        let share = self
            .amount
            .checked_mul(Decimal::from(basis_points))?
            .checked_div(Decimal::from(10_000))?;
        let mut amount =
            share.round_dp_with_strategy(self.decimals(), RoundingStrategy::MidpointAwayFromZero);
        amount.rescale(self.decimals());
        Some(Money {
            amount,
            currency: self.currency,
        })
    }
}

fn exponent(currency: Currency) -> u32 {
    u32::from(currency.exponent().unwrap_or(0))
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency.code())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    amount: String,
    currency: String,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            amount: self.amount.to_string(),
            currency: self.currency.code().to_owned(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Money::parse(&wire.amount, &wire.currency).map_err(serde::de::Error::custom)
    }
}

/// Serde for totals (an order's price, fee and total), which may pass the million a unit price
/// is held to: `#[serde(with = "amanar_marketplace::money::total")]`. Same wire form.
pub mod total {
    use super::*;

    /// The largest total: ten trillion major units, within i64 minor units at three decimals.
    const MAX_TOTAL: i64 = 10_000_000_000_000;

    /// Whether `money` can be stored as a total (and read back).
    pub fn fits(money: &Money) -> bool {
        money.amount <= Decimal::from(MAX_TOTAL)
    }

    pub fn serialize<S: Serializer>(money: &Money, serializer: S) -> Result<S::Ok, S::Error> {
        money.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Money::parse_bounded(&wire.amount, &wire.currency, Decimal::from(MAX_TOTAL))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, currency).unwrap()
    }

    #[test]
    fn amounts_are_rounded_to_the_currency_minor_unit() {
        assert_eq!(money("12.5", "USD").amount().to_string(), "12.50");
        assert_eq!(money("12.505", "USD").amount().to_string(), "12.51");
        assert_eq!(money("1500.5", "JPY").amount().to_string(), "1501");
        assert_eq!(money("3.25", "KWD").amount().to_string(), "3.250");
        assert_eq!(money("3.2505", "KWD").amount().to_string(), "3.251");
        assert_eq!(money("12.50", "USD").minor_units(), 1250);
        assert_eq!(money("1500", "JPY").minor_units(), 1500);
        assert_eq!(money("3.250", "KWD").minor_units(), 3250);
    }

    #[test]
    fn it_travels_as_strings_with_every_decimal() {
        let price: Money =
            serde_json::from_value(json!({"amount": "7", "currency": "EUR"})).unwrap();
        assert_eq!(
            serde_json::to_value(price).unwrap(),
            json!({"amount": "7.00", "currency": "EUR"})
        );
        assert_eq!(
            money("12.50", "USD").times(3).unwrap().to_string(),
            "37.50 USD"
        );
    }

    #[test]
    fn fees_are_shares_rounded_to_the_minor_unit_and_sums_keep_the_currency() {
        assert_eq!(
            money("37.50", "USD").share(500).unwrap().to_string(),
            "1.88 USD"
        );
        assert_eq!(
            money("1501", "JPY").share(250).unwrap().to_string(),
            "38 JPY"
        );
        assert_eq!(
            money("3.250", "KWD").share(333).unwrap().to_string(),
            "0.108 KWD"
        );
        assert_eq!(money("1", "USD").zero_like().to_string(), "0.00 USD");
        let sum = money("1.10", "EUR").plus(&money("2.205", "EUR")).unwrap();
        assert_eq!(sum.to_string(), "3.31 EUR");
        assert!(money("1", "EUR").plus(&money("1", "USD")).is_none());
    }

    #[test]
    fn bad_money_names_the_part() {
        for (amount, currency, field) in [
            ("12", "usd", "currency"),
            ("12", "XAU", "currency"),
            ("12", "ABC", "currency"),
            ("-1", "USD", "amount"),
            ("1e3", "USD", "amount"),
            ("1000000.01", "USD", "amount"),
        ] {
            assert_eq!(
                Money::parse(amount, currency).unwrap_err().field,
                field,
                "{amount} {currency}"
            );
        }
        assert!(serde_json::from_value::<Money>(json!({"amount": 12, "currency": "USD"})).is_err());
    }
}
