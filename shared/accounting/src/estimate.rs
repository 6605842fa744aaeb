//! Estimates: an activity amount times an emission factor, in exact decimals.
//!
//! `co2eKg = amount × (size of the caller's unit / size of the factor's unit) × factor value`,
//! computed as multiplications followed by one division, so the result is exact whenever its decimal
//! expansion terminates within 28 significant digits, and `exact` says whether it did. With the
//! factor's own unit and GWP set the result is exactly `amount × published value`.

use rust_decimal::Decimal;

use crate::factors::{Factor, GasBasis};
use crate::gwp::GwpSet;
use crate::units::{Conversion, Exactly, Unit, UnitError};

/// One gas's share of an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasAmount {
    /// Mass of the gas itself, where the source gives masses.
    pub kg: Option<Decimal>,
    pub co2e_kg: Decimal,
}

/// Per-gas shares; `None` for a gas the factor does not break out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GasAmounts {
    pub co2: Option<GasAmount>,
    pub ch4: Option<GasAmount>,
    pub n2o: Option<GasAmount>,
}

/// The result of one estimate and how it was calculated.
#[derive(Debug, Clone)]
pub struct Estimate<'f> {
    pub factor: &'f Factor,
    pub co2e_kg: Decimal,
    pub gases: Option<GasAmounts>,
    pub amount: Decimal,
    pub unit: &'static Unit,
    /// The amount in the factor's unit.
    pub converted_amount: Decimal,
    /// kg CO2e per factor unit on `gwp_set`: the published total, or its restatement from the
    /// per-gas values on another GWP set.
    pub factor_value: Decimal,
    pub gwp_set: GwpSet,
    /// Whether `co2e_kg` is the exact value (no digit rounded away).
    pub exact: bool,
}

/// Why an estimate cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error("the amount must not be negative")]
    NegativeAmount,
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error("this factor has no per-gas breakdown that covers its total, so it is only available on {}", available.as_str())]
    GwpUnavailable { available: GwpSet },
    #[error("the amount is too large: the result would exceed what a decimal holds (7.9e28)")]
    TooLarge,
}

/// Per-unit value of one gas restated on `gwp`: (mass per unit, CO2e per unit). Factor values and
/// GWPs are small, so these products always fit.
fn restate(
    value: Decimal,
    basis: GasBasis,
    published: Decimal,
    target: Decimal,
) -> (Option<Decimal>, Exactly) {
    let fits = "a factor value times a GWP fits in a decimal";
    match basis {
        GasBasis::Mass => (Some(value), Exactly::mul(value, target).expect(fits)),
        GasBasis::Co2e if published == target => (None, Exactly::exact(value)),
        GasBasis::Co2e => (
            None,
            Exactly::mul(value, target)
                .and_then(|v| v.divided_by(published))
                .expect(fits),
        ),
    }
}

/// Estimates the emissions of `amount` `unit`s of the factor's activity on a GWP set.
pub fn estimate<'f>(
    factor: &'f Factor,
    amount: Decimal,
    unit: &'static Unit,
    gwp_set: GwpSet,
) -> Result<Estimate<'f>, EstimateError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(EstimateError::NegativeAmount);
    }
    if gwp_set != factor.gwp_set && !factor.regassable {
        return Err(EstimateError::GwpUnavailable {
            available: factor.gwp_set,
        });
    }
    let conversion = Conversion::between(unit, factor.unit)?;
    // amount × numerator × value ÷ denominator: multiply first, divide once.
    let scaled = |per_unit: Exactly| -> Result<Exactly, EstimateError> {
        let product = Exactly::mul(amount, conversion.numerator)
            .and_then(|p| p.times(per_unit.value))
            .ok_or(EstimateError::TooLarge)?;
        let result = if conversion.is_identity() {
            product
        } else {
            product
                .divided_by(conversion.denominator)
                .ok_or(EstimateError::TooLarge)?
        };
        Ok(Exactly {
            value: result.value,
            exact: result.exact && per_unit.exact,
        })
    };

    let published = factor.gwp_set;
    let mut per_unit_total = Exactly::exact(factor.co2e_kg);
    let gases = factor.gases.map(|g| -> Result<GasAmounts, EstimateError> {
        let co2 = g.co2.map(|v| (Some(v), Exactly::exact(v)));
        let ch4 = g
            .ch4
            .map(|v| restate(v, g.basis, published.ch4(), gwp_set.ch4()));
        let n2o = g
            .n2o
            .map(|v| restate(v, g.basis, published.n2o(), gwp_set.n2o()));
        if gwp_set != published {
            per_unit_total = [co2, ch4, n2o]
                .into_iter()
                .flatten()
                .try_fold(Exactly::exact(Decimal::ZERO), |sum, (_, co2e)| {
                    sum.plus(co2e)
                })
                .ok_or(EstimateError::TooLarge)?;
        }
        let share = |gas: Option<(Option<Decimal>, Exactly)>| {
            gas.map(|(mass, co2e)| -> Result<GasAmount, EstimateError> {
                Ok(GasAmount {
                    kg: match mass {
                        Some(m) => Some(scaled(Exactly::exact(m))?.value.normalize()),
                        None => None,
                    },
                    co2e_kg: scaled(co2e)?.value.normalize(),
                })
            })
            .transpose()
        };
        Ok(GasAmounts {
            co2: share(co2)?,
            ch4: share(ch4)?,
            n2o: share(n2o)?,
        })
    });
    let gases = gases.transpose()?;
    let total = scaled(per_unit_total)?;
    let converted = conversion.apply(amount).ok_or(EstimateError::TooLarge)?;
    Ok(Estimate {
        factor,
        co2e_kg: total.value.normalize(),
        gases,
        amount,
        unit,
        converted_amount: converted.value.normalize(),
        factor_value: per_unit_total.value.normalize(),
        gwp_set,
        exact: total.exact,
    })
}
