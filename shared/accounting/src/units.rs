//! Units of measure and exact conversions between them.
//!
//! Every unit is an exact decimal multiple of its dimension's base unit (J, l, kg, m, passenger-km,
//! tonne-km, USD, m², or one of a count). The exact constants come from their legal definitions: the
//! international foot and pound (1959), the US gallon (231 in³), the imperial gallon (4.54609 l), the
//! International Table Btu (1055.05585262 J) and the nautical mile (1852 m). A conversion from `a`
//! to `b` is the fraction `size(a) / size(b)`, applied as one multiplication and one division, so
//! a result is exact whenever its decimal expansion terminates within 28 digits.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a quantity measures. Units convert only within one type (and, for counts, only to
/// themselves).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum UnitType {
    Energy,
    Volume,
    Mass,
    Distance,
    PassengerDistance,
    WeightDistance,
    Money,
    Area,
    Count,
}

impl UnitType {
    pub const ALL: [UnitType; 9] = [
        UnitType::Energy,
        UnitType::Volume,
        UnitType::Mass,
        UnitType::Distance,
        UnitType::PassengerDistance,
        UnitType::WeightDistance,
        UnitType::Money,
        UnitType::Area,
        UnitType::Count,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Energy => "energy",
            UnitType::Volume => "volume",
            UnitType::Mass => "mass",
            UnitType::Distance => "distance",
            UnitType::PassengerDistance => "passenger-distance",
            UnitType::WeightDistance => "weight-distance",
            UnitType::Money => "money",
            UnitType::Area => "area",
            UnitType::Count => "count",
        }
    }

    pub fn parse(text: &str) -> Option<UnitType> {
        UnitType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The units of this type, in the order [`GET /v1/units`] lists them.
    pub fn units(self) -> impl Iterator<Item = &'static Unit> {
        UNITS.iter().filter(move |u| u.unit_type == self)
    }
}

impl fmt::Display for UnitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unit: its canonical symbol, a name, its type and its exact size in the base unit.
#[derive(Debug, PartialEq, Eq)]
pub struct Unit {
    pub symbol: &'static str,
    pub name: &'static str,
    pub unit_type: UnitType,
    /// Other spellings accepted on input (matched case-insensitively, as is the symbol).
    pub aliases: &'static [&'static str],
    /// Size in the base unit: `mantissa × 10^-scale`.
    mantissa: i64,
    scale: u32,
}

impl Unit {
    /// The exact size of this unit in its base unit.
    pub fn size(&self) -> Decimal {
        Decimal::new(self.mantissa, self.scale)
    }

    /// Counts are distinct things: a room-night never converts to an FTE-hour.
    fn converts_to(&self, other: &Unit) -> bool {
        self.unit_type == other.unit_type
            && (self.unit_type != UnitType::Count || std::ptr::eq(self, other))
    }

    /// Looks a unit up by its symbol or an alias, ignoring case and surrounding blanks.
    pub fn parse(text: &str) -> Option<&'static Unit> {
        let text = text.trim();
        UNITS.iter().find(|u| {
            u.symbol.eq_ignore_ascii_case(text) && (u.symbol == text || !case_sensitive(u.symbol))
                || u.aliases.iter().any(|a| a.eq_ignore_ascii_case(text))
        })
    }
}

/// Symbols whose case carries meaning (`Ml` is a megalitre, `ml` a millilitre; `MWh` is not
/// `mWh`) are matched exactly; every other symbol ignores case.
fn case_sensitive(symbol: &str) -> bool {
    matches!(symbol, "Ml" | "ml")
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol)
    }
}

macro_rules! unit {
    ($symbol:literal, $name:literal, $type:ident, $mantissa:literal e-$scale:literal $(, $alias:literal)*) => {
        Unit {
            symbol: $symbol,
            name: $name,
            unit_type: UnitType::$type,
            aliases: &[$($alias),*],
            mantissa: $mantissa,
            scale: $scale,
        }
    };
}

/// Every unit the API accepts. Base units: J, l, kg, m, passenger-km, tonne-km, USD, m², and each
/// count is its own base.
pub static UNITS: &[Unit] = &[
    // Energy, in joules.
    unit!("Wh", "watt-hour", Energy, 3600 e-0),
    unit!("kWh", "kilowatt-hour", Energy, 3_600_000 e-0, "kilowatt-hour", "kilowatt-hours"),
    unit!("MWh", "megawatt-hour", Energy, 3_600_000_000 e-0, "megawatt-hour", "megawatt-hours"),
    unit!("GWh", "gigawatt-hour", Energy, 3_600_000_000_000 e-0),
    unit!("J", "joule", Energy, 1 e-0),
    unit!("kJ", "kilojoule", Energy, 1000 e-0),
    unit!("MJ", "megajoule", Energy, 1_000_000 e-0),
    unit!("GJ", "gigajoule", Energy, 1_000_000_000 e-0),
    unit!("TJ", "terajoule", Energy, 1_000_000_000_000 e-0),
    unit!("Btu", "British thermal unit (International Table)", Energy, 105505585262 e-8),
    unit!("therm", "therm (100 000 Btu)", Energy, 105505585262 e-3, "therms"),
    unit!("MMBtu", "million Btu", Energy, 105505585262 e-2, "million btu"),
    // Volume, in litres.
    unit!("ml", "millilitre", Volume, 1 e-3),
    unit!("l", "litre", Volume, 1 e-0, "litre", "litres", "liter", "liters"),
    unit!("m3", "cubic metre", Volume, 1000 e-0, "m³", "cubic metre", "cubic metres", "cubic meter", "cubic meters"),
    unit!("Ml", "megalitre (million litres)", Volume, 1_000_000 e-0, "million litres", "megalitre", "megalitres"),
    unit!("gal_us", "US gallon", Volume, 3785411784 e-9, "gal", "gallon", "gallons", "US gal", "us_gal"),
    unit!("gal_imp", "imperial gallon", Volume, 454609 e-5, "imp gal", "imperial gallon", "imperial gallons"),
    unit!("bbl", "barrel (US oil, 42 US gallons)", Volume, 158987294928 e-9, "barrel", "barrels"),
    unit!("ft3", "cubic foot", Volume, 28316846592 e-9, "ft³", "cubic foot", "cubic feet"),
    unit!("scf", "standard cubic foot", Volume, 28316846592 e-9, "standard cubic foot", "standard cubic feet"),
    // Mass, in kilograms.
    unit!("g", "gram", Mass, 1 e-3, "grams"),
    unit!("kg", "kilogram", Mass, 1 e-0, "kilogram", "kilograms"),
    unit!("t", "tonne (metric ton)", Mass, 1000 e-0, "tonne", "tonnes", "metric ton", "metric tons"),
    unit!("lb", "pound", Mass, 45359237 e-8, "lbs", "pound", "pounds"),
    unit!("short_ton", "short ton (US, 2000 lb)", Mass, 90718474 e-5, "short ton", "short tons", "us ton"),
    unit!("long_ton", "long ton (imperial, 2240 lb)", Mass, 10160469088 e-7, "long ton", "long tons"),
    // Distance, in metres.
    unit!("m", "metre", Distance, 1 e-0, "metre", "metres", "meter", "meters"),
    unit!("km", "kilometre", Distance, 1000 e-0, "kilometre", "kilometres", "kilometer", "kilometers"),
    unit!("mi", "mile (international)", Distance, 1609344 e-3, "mile", "miles"),
    unit!("nmi", "nautical mile", Distance, 1852 e-0, "nautical mile", "nautical miles"),
    // Passenger-distance, in passenger-kilometres.
    unit!("passenger.km", "passenger-kilometre", PassengerDistance, 1 e-0, "pkm", "passenger-km"),
    unit!("passenger.mi", "passenger-mile", PassengerDistance, 1609344 e-6, "passenger-mile", "passenger-miles"),
    // Weight-distance, in tonne-kilometres.
    unit!("tonne.km", "tonne-kilometre", WeightDistance, 1 e-0, "tkm", "t.km", "tonne-km"),
    unit!("tonne.mi", "tonne-mile", WeightDistance, 1609344 e-6, "t.mi", "tonne-mile"),
    unit!("short_ton.mi", "short ton-mile (US ton-mile)", WeightDistance, 145997231821056 e-14, "ton-mile", "ton-miles", "short ton-mile"),
    // Money. Spend factors are per US dollar of their price year; no exchange rates are applied.
    unit!("USD", "US dollar", Money, 1 e-0, "$", "US dollar", "US dollars"),
    // Area, in square metres.
    unit!("m2", "square metre", Area, 1 e-0, "m²", "square metre", "square metres"),
    unit!("km2", "square kilometre", Area, 1_000_000 e-0, "km²"),
    unit!("ha", "hectare", Area, 10000 e-0, "hectare", "hectares"),
    unit!("ft2", "square foot", Area, 9290304 e-8, "ft²", "square foot", "square feet"),
    unit!("acre", "acre (international)", Area, 40468564224 e-7, "acres"),
    // Counts: each its own dimension.
    unit!("unit", "item", Count, 1 e-0, "item", "items", "units"),
    unit!("room_night", "hotel room-night", Count, 1 e-0, "room night", "room nights", "room-night"),
    unit!("fte_hour", "full-time-equivalent working hour", Count, 1 e-0, "fte hour", "fte-hour"),
];

/// Why a quantity cannot be expressed in another unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("unknown unit {0:?}")]
    Unknown(String),
    #[error("{from} is a {} unit and cannot be converted to {to}", from.unit_type)]
    Incompatible {
        from: &'static Unit,
        to: &'static Unit,
    },
    #[error(
        "the amount is too large to convert (results are limited to 28 significant digits below 7.9e28)"
    )]
    Overflow,
}

/// The exact fraction that turns an amount in `from` into an amount in `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    pub numerator: Decimal,
    pub denominator: Decimal,
}

impl Conversion {
    pub fn between(from: &'static Unit, to: &'static Unit) -> Result<Conversion, UnitError> {
        if !from.converts_to(to) {
            return Err(UnitError::Incompatible { from, to });
        }
        if std::ptr::eq(from, to) {
            return Ok(Conversion::IDENTITY);
        }
        Ok(Conversion {
            numerator: from.size(),
            denominator: to.size(),
        })
    }

    pub const IDENTITY: Conversion = Conversion {
        numerator: Decimal::ONE,
        denominator: Decimal::ONE,
    };

    pub fn is_identity(&self) -> bool {
        self.numerator == self.denominator
    }

    /// `amount × numerator / denominator`, and whether that is exact; `None` when the result
    /// exceeds what a decimal holds.
    pub fn apply(&self, amount: Decimal) -> Option<Exactly> {
        if self.is_identity() {
            return Some(Exactly::exact(amount));
        }
        Exactly::mul(amount, self.numerator)?.divided_by(self.denominator)
    }
}

/// A decimal result and whether it equals the true value (no digit was rounded away). Every
/// operation is checked: `None` means the result exceeds what a decimal holds (about 7.9e28), which
/// callers report as a too-large amount rather than panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exactly {
    pub value: Decimal,
    pub exact: bool,
}

impl Exactly {
    pub fn exact(value: Decimal) -> Self {
        Self { value, exact: true }
    }

    /// `a × b`. Decimal multiplication only ever rounds by dropping scale, so an unchanged scale
    /// sum proves the product exact.
    pub fn mul(a: Decimal, b: Decimal) -> Option<Self> {
        let value = a.checked_mul(b)?;
        let exact = value.is_zero() || value.scale() == a.scale() + b.scale();
        Some(Self { value, exact })
    }

    /// `self × factor`, exact only if both are.
    pub fn times(self, factor: Decimal) -> Option<Self> {
        let product = Exactly::mul(self.value, factor)?;
        Some(Self {
            value: product.value,
            exact: self.exact && product.exact,
        })
    }

    /// `self ÷ divisor`, exact if the quotient times the divisor gives back the dividend.
    pub fn divided_by(self, divisor: Decimal) -> Option<Self> {
        let value = self.value.checked_div(divisor)?;
        let exact = match Exactly::mul(value, divisor) {
            Some(back) => self.exact && back.exact && back.value == self.value,
            None => false,
        };
        Some(Self { value, exact })
    }

    pub fn plus(self, other: Exactly) -> Option<Self> {
        Some(Self {
            value: self.value.checked_add(other.value)?,
            exact: self.exact && other.exact,
        })
    }
}

/// Converts `amount` from one unit to another.
pub fn convert(
    amount: Decimal,
    from: &'static Unit,
    to: &'static Unit,
) -> Result<Exactly, UnitError> {
    Conversion::between(from, to)?
        .apply(amount)
        .ok_or(UnitError::Overflow)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn unit(symbol: &str) -> &'static Unit {
        Unit::parse(symbol).unwrap_or_else(|| panic!("{symbol} is a unit"))
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn symbols_and_aliases_are_unique_and_every_type_has_units() {
        let mut seen = std::collections::HashSet::new();
        for u in UNITS {
            for spelling in std::iter::once(&u.symbol).chain(u.aliases) {
                let key = if case_sensitive(spelling) {
                    spelling.to_string()
                } else {
                    spelling.to_lowercase()
                };
                assert!(seen.insert(key), "{spelling} is spelled twice");
            }
            assert!(u.size() > Decimal::ZERO);
        }
        for t in UnitType::ALL {
            assert!(t.units().count() > 0, "{t} has no units");
            assert_eq!(UnitType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn parsing_ignores_case_except_where_case_is_the_meaning() {
        assert_eq!(unit("KWH").symbol, "kWh");
        assert_eq!(unit("litres").symbol, "l");
        assert_eq!(unit("Ml").symbol, "Ml");
        assert_eq!(unit("ml").symbol, "ml");
        assert_eq!(unit("million litres").symbol, "Ml");
        assert_eq!(unit(" miles ").symbol, "mi");
        assert_eq!(unit("ton-mile").symbol, "short_ton.mi");
        assert!(Unit::parse("furlong").is_none());
    }

    #[test]
    fn known_conversions_are_exact() {
        let cases = [
            ("1", "MWh", "kWh", "1000"),
            ("1", "kWh", "MJ", "3.6"),
            ("1", "MMBtu", "kWh", "293.07107017222222222222222222"),
            ("1", "MMBtu", "GJ", "1.05505585262"),
            ("10", "therm", "MMBtu", "1"),
            ("1", "gal_us", "l", "3.785411784"),
            ("1", "gal_imp", "l", "4.54609"),
            ("1", "scf", "m3", "0.028316846592"),
            ("1", "short_ton", "kg", "907.18474"),
            ("2000", "lb", "short_ton", "1"),
            ("1", "mi", "km", "1.609344"),
            ("1", "nmi", "km", "1.852"),
            ("1", "passenger.mi", "passenger.km", "1.609344"),
            ("1", "short_ton.mi", "tonne.km", "1.45997231821056"),
            ("1", "acre", "ha", "0.40468564224"),
        ];
        for (amount, from, to, expected) in cases {
            let result = convert(dec(amount), unit(from), unit(to)).unwrap();
            assert_eq!(
                result.value.normalize(),
                dec(expected),
                "{amount} {from} in {to}"
            );
            let terminates = !expected.ends_with("222");
            assert_eq!(result.exact, terminates, "{amount} {from} in {to}");
        }
    }

    #[test]
    fn units_of_different_types_or_different_counts_do_not_convert() {
        assert!(matches!(
            convert(Decimal::ONE, unit("kWh"), unit("l")),
            Err(UnitError::Incompatible { .. })
        ));
        assert!(convert(Decimal::ONE, unit("room_night"), unit("fte_hour")).is_err());
        assert!(convert(Decimal::ONE, unit("room_night"), unit("room_night")).is_ok());
        assert!(convert(Decimal::ONE, unit("km"), unit("passenger.km")).is_err());
    }

    #[test]
    fn an_amount_too_large_to_hold_is_an_error_not_a_panic() {
        assert_eq!(
            convert(Decimal::MAX, unit("GWh"), unit("kWh")),
            Err(UnitError::Overflow)
        );
        assert_eq!(
            convert(Decimal::MAX, unit("l"), unit("ml")),
            Err(UnitError::Overflow)
        );
    }

    fn same_type_pair() -> impl Strategy<Value = (&'static Unit, &'static Unit, &'static Unit)> {
        let types: Vec<UnitType> = UnitType::ALL
            .into_iter()
            .filter(|t| *t != UnitType::Count)
            .collect();
        proptest::sample::select(types).prop_flat_map(|t| {
            let units: Vec<&'static Unit> = t.units().collect();
            (
                proptest::sample::select(units.clone()),
                proptest::sample::select(units.clone()),
                proptest::sample::select(units),
            )
        })
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (0i64..1_000_000_000_000, 0u32..7).prop_map(|(m, s)| Decimal::new(m, s))
    }

    /// How far an amount held in `unit` and then converted into `into` may be off. The amount in
    /// `unit` is rounded at the 28th decimal place (the scale rust_decimal holds), whatever its
    /// size: a tiny amount in a large unit keeps fewer significant digits, and that rounding,
    /// scaled from `unit` into `into`, bounds the gap.
    fn rounding_in(unit: &'static Unit, into: &'static Unit) -> Decimal {
        convert(Decimal::ONE, unit, into).unwrap().value * Decimal::new(1, 27)
    }

    /// Relative difference, for results rounded at the 28th significant digit.
    fn close(a: Decimal, b: Decimal) -> bool {
        let diff = (a - b).abs();
        diff <= a.abs().max(b.abs()) * Decimal::new(1, 24) || diff <= Decimal::new(1, 26)
    }

    #[test]
    fn a_tiny_amount_through_a_large_unit_differs_from_the_direct_conversion_only_by_rounding() {
        // Found by the property below: 577 J is 1.6e-10 GWh, which keeps 18 significant digits.
        let via = convert(
            convert(dec("577"), unit("J"), unit("GWh")).unwrap().value,
            unit("GWh"),
            unit("Wh"),
        )
        .unwrap();
        let direct = convert(dec("577"), unit("J"), unit("Wh")).unwrap();
        assert!((via.value - direct.value).abs() < dec("0.000000000000000001"));
    }

    #[test]
    fn a_round_trip_through_a_large_unit_differs_only_by_the_rounding_of_the_intermediate() {
        // Found by the property below: 226 J is 6.27e-11 GWh, which keeps 18 significant digits,
        // and 226.00000000000000008 J comes back.
        let there = convert(dec("226"), unit("J"), unit("GWh")).unwrap();
        let back = convert(there.value, unit("GWh"), unit("J")).unwrap();
        assert!(!there.exact);
        assert!((back.value - dec("226")).abs() < dec("0.0000000000000001"));
    }

    proptest! {
        #[test]
        fn a_round_trip_gives_back_the_amount((a, b, _) in same_type_pair(), x in amount()) {
            let there = convert(x, a, b).unwrap();
            let back = convert(there.value, b, a).unwrap();
            // 226 J in GWh keeps 18 significant digits: see `rounding_in`.
            prop_assert!(
                close(back.value, x) || (back.value - x).abs() <= rounding_in(b, a),
                "{x} {a} -> {} {b} -> {} {a}", there.value, back.value
            );
            if there.exact {
                prop_assert_eq!(back.value.normalize(), x.normalize());
            }
        }

        #[test]
        fn converting_through_a_third_unit_equals_converting_directly((a, b, c) in same_type_pair(), x in amount()) {
            let via = convert(convert(x, a, b).unwrap().value, b, c).unwrap();
            let direct = convert(x, a, c).unwrap();
            // 577 J in GWh keeps 18 significant digits: see `rounding_in`.
            prop_assert!(
                close(via.value, direct.value) || (via.value - direct.value).abs() <= rounding_in(b, c),
                "{x} {a} -> {c}: {} via {b}, {} directly", via.value, direct.value
            );
        }

        #[test]
        fn the_conversion_fractions_of_a_round_trip_multiply_to_one((a, b, _) in same_type_pair()) {
            let there = Conversion::between(a, b).unwrap();
            let back = Conversion::between(b, a).unwrap();
            prop_assert_eq!(
                there.numerator * back.numerator,
                there.denominator * back.denominator
            );
        }

        #[test]
        fn conversion_is_linear((a, b, _) in same_type_pair(), x in amount(), y in amount()) {
            let sum = convert(x + y, a, b).unwrap().value;
            let parts = convert(x, a, b).unwrap().value + convert(y, a, b).unwrap().value;
            prop_assert!(close(sum, parts), "{sum} vs {parts}");
        }
    }
}
