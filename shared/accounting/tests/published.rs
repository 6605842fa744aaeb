//! Estimates pinned to real published factors. Every expected value is worked out by hand from the
//! source row named beside it (DESNZ 2023 flat file v1.1, EPA GHG Emission Factors Hub 2024, USEEIO
//! v1.2), after the library's one normalisation: DESNZ values are the xlsx doubles rounded to 15
//! significant digits.

use std::str::FromStr;

use amanar_accounting::factors::{CalorificBasis, Factor, Filter, GasBasis, Selector};
use amanar_accounting::{GwpSet, Library, Source, Unit, estimate};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn unit(symbol: &str) -> &'static Unit {
    Unit::parse(symbol).unwrap()
}

/// The one factor of a source with this source id, year and unit (and calorific basis).
fn factor(
    source: Source,
    year: u16,
    source_id: &str,
    unit_symbol: &str,
    basis: Option<CalorificBasis>,
) -> &'static Factor {
    factor_of(None, source, year, source_id, unit_symbol, basis)
}

/// The same, for a source id that several activities share (an EPA fuel in stationary and mobile
/// combustion, an eGRID subregion's total-output and non-baseload rates).
fn factor_of(
    activity_id: Option<&str>,
    source: Source,
    year: u16,
    source_id: &str,
    unit_symbol: &str,
    basis: Option<CalorificBasis>,
) -> &'static Factor {
    let filter = Filter {
        source: Some(source),
        year: Some(year),
        source_id: Some(source_id.to_owned()),
        activity_id: activity_id.map(str::to_owned),
        ..Filter::default()
    };
    let (found, _) = Library::shipped().search(&filter, 0, 100);
    let matching: Vec<_> = found
        .into_iter()
        .filter(|f| f.unit.symbol == unit_symbol && f.calorific_basis == basis)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{source} {year} {source_id} per {unit_symbol} {basis:?}: {matching:#?}"
    );
    matching[0]
}

fn co2e(f: &Factor, amount: &str, unit_symbol: &str) -> Decimal {
    estimate(f, dec(amount), unit(unit_symbol), f.gwp_set)
        .unwrap()
        .co2e_kg
}

#[test]
fn desnz_uk_electricity() {
    // 7_400_4000_5_1, UK electricity, Electricity: UK, kWh: 0.20707428859060403 kg CO2e.
    let f = factor(Source::Desnz, 2023, "7_400_4000_5_1", "kWh", None);
    assert_eq!(f.region, "GB");
    assert_eq!(f.scope.as_str(), "2");
    assert_eq!(f.co2e_kg, dec("0.207074288590604"));
    assert_eq!(co2e(f, "1000", "kWh"), dec("207.074288590604"));
    assert_eq!(co2e(f, "1", "MWh"), dec("207.074288590604"));
}

#[test]
fn desnz_natural_gas_on_gross_and_net_calorific_value() {
    // 1_100_1004_6_1 kWh (Gross CV): 0.18292892617449666; 1_100_1004_7_1 kWh (Net CV): 0.20267141879194631.
    let gross = factor(
        Source::Desnz,
        2023,
        "1_100_1004_6_1",
        "kWh",
        Some(CalorificBasis::Gross),
    );
    let net = factor(
        Source::Desnz,
        2023,
        "1_100_1004_7_1",
        "kWh",
        Some(CalorificBasis::Net),
    );
    assert_ne!(gross.id, net.id);
    assert_eq!(gross.activity_id, net.activity_id);
    assert_eq!(co2e(gross, "1000", "kWh"), dec("182.928926174497"));
    assert_eq!(co2e(net, "1000", "kWh"), dec("202.671418791946"));
    // Per-gas parts of the gross factor: CO2 0.18256, CH4 0.00028 (2.8000000000000003E-4), N2O 8.8926174496644302E-5.
    let e = estimate(gross, dec("1000"), unit("kWh"), GwpSet::Ar5).unwrap();
    let gases = e.gases.unwrap();
    assert_eq!(gases.co2.unwrap().co2e_kg, dec("182.56"));
    assert_eq!(gases.ch4.unwrap().co2e_kg, dec("0.28"));
    assert_eq!(gases.n2o.unwrap().co2e_kg, dec("0.0889261744966443"));
    assert!(e.exact);
}

#[test]
fn desnz_diesel_and_petrol_per_litre() {
    // 1_101_1011_8_1 Diesel (average biofuel blend), litres: 2.5120638845637586.
    let diesel = factor(Source::Desnz, 2023, "1_101_1011_8_1", "l", None);
    assert_eq!(co2e(diesel, "100", "l"), dec("251.206388456376"));
    // 1_101_1017_8_1 Petrol (average biofuel blend), litres: 2.0974731275167788.
    let petrol = factor(Source::Desnz, 2023, "1_101_1017_8_1", "l", None);
    assert_eq!(co2e(petrol, "50", "l"), dec("104.873656375839"));
    // 10 US gallons = 37.85411784 l, exactly.
    assert_eq!(
        co2e(petrol, "10", "gal_us"),
        dec("79.3979949352535366973552")
    );
}

#[test]
fn epa_stationary_natural_gas_per_mmbtu_and_per_scf() {
    // Natural Gas: 53.06 kg CO2, 1 g CH4, 0.1 g N2O per mmBtu; 0.05444 kg CO2, 0.00103 g CH4,
    // 0.0001 g N2O per scf. AR5: CO2 + 28 CH4 + 265 N2O.
    let per_energy = factor(
        Source::EpaHub,
        2024,
        "Natural Gas",
        "MMBtu",
        Some(CalorificBasis::Gross),
    );
    assert_eq!(per_energy.co2e_kg, dec("53.1145"));
    assert_eq!(co2e(per_energy, "10", "MMBtu"), dec("531.145"));
    let e = estimate(per_energy, dec("10"), unit("MMBtu"), GwpSet::Ar5).unwrap();
    let gases = e.gases.unwrap();
    assert_eq!(gases.ch4.unwrap().kg, Some(dec("0.01")));
    assert_eq!(gases.n2o.unwrap().co2e_kg, dec("0.265"));
    // AR6: 53.06 + 27 × 0.001 + 273 × 0.0001 = 53.1143 per mmBtu.
    let ar6 = estimate(per_energy, dec("10"), unit("MMBtu"), GwpSet::Ar6).unwrap();
    assert_eq!(ar6.co2e_kg, dec("531.143"));
    assert!(ar6.exact);

    let per_volume = factor(Source::EpaHub, 2024, "Natural Gas", "scf", None);
    assert_eq!(per_volume.co2e_kg, dec("0.05449534"));
    assert_eq!(co2e(per_volume, "1000", "scf"), dec("54.49534"));
}

#[test]
fn epa_mobile_gasoline_and_diesel_co2_plus_ch4_and_n2o_per_mile() {
    // Mobile combustion CO2: Motor Gasoline 8.78, Diesel Fuel 10.21 kg CO2 per gallon.
    let gasoline = factor_of(
        Some("fuel-petrol"),
        Source::EpaHub,
        2024,
        "Motor Gasoline",
        "gal_us",
        None,
    );
    let diesel = factor_of(
        Some("fuel-diesel"),
        Source::EpaHub,
        2024,
        "Diesel Fuel",
        "gal_us",
        None,
    );
    assert_eq!(co2e(gasoline, "10", "gal_us"), dec("87.8"));
    assert_eq!(co2e(diesel, "10", "gal_us"), dec("102.1"));
    // Gasoline Passenger Cars, model year 2018: 0.00524 g CH4 and 0.001585 g N2O per vehicle-mile:
    // 250 × (28 × 0.00000524 + 265 × 0.000001585) = 0.14168625 kg CO2e.
    let (cars, _) = Library::shipped().search(
        &Filter {
            source: Some(Source::EpaHub),
            year: Some(2024),
            ..Filter::default()
        }
        .with_text("gasoline passenger cars 2018"),
        0,
        100,
    );
    assert_eq!(cars.len(), 1, "{cars:#?}");
    assert_eq!(co2e(cars[0], "250", "mi"), dec("0.14168625"));
}

#[test]
fn epa_egrid_subregion_electricity() {
    // CAMX: 497.443 lb CO2, 0.03 lb CH4, 0.004 lb N2O per MWh; 1 lb = 0.45359237 kg.
    // (497.443 + 28 × 0.03 + 265 × 0.004) × 0.45359237 = 226.49817481291 kg CO2e per MWh.
    let camx = factor_of(
        Some("electricity-grid"),
        Source::EpaHub,
        2024,
        "CAMX",
        "MWh",
        None,
    );
    assert_eq!(camx.region, "US-CAMX");
    assert_eq!(camx.activity_id, "electricity-grid");
    assert_eq!(co2e(camx, "2.5", "MWh"), dec("566.245437032275"));
    assert_eq!(co2e(camx, "2500", "kWh"), dec("566.245437032275"));
}

#[test]
fn epa_passenger_vehicle_miles_for_business_travel() {
    // Scope 3 category 6, Passenger Car, per vehicle-mile: 0.17515256410803692 kg CO2,
    // 0.005141464699844529 g CH4, 0.003440577635619231 g N2O (each to 15 significant digits).
    let car = factor(Source::EpaHub, 2024, "Passenger Car", "mi", None);
    assert_eq!(car.scope3_category, Some(6));
    assert_eq!(car.co2e_kg, dec("0.17620827819307174279"));
    assert_eq!(co2e(car, "120", "mi"), dec("21.1449933831686091348"));
}

#[test]
fn useeio_spend() {
    // NAICS 331110 Iron and Steel Mills: 0.979 kg CO2e per 2021 USD with margins.
    let steel = factor(Source::Useeio, 2021, "331110", "USD", None);
    assert_eq!(steel.scope3_category, Some(1));
    assert_eq!(co2e(steel, "1000", "USD"), dec("979"));
}

#[test]
fn every_desnz_factor_group_s_gas_parts_add_up_to_its_total() {
    let library = Library::shipped();
    let mut checked = 0;
    for f in library
        .factors()
        .iter()
        .filter(|f| f.source == Source::Desnz)
    {
        let Some(g) = f.gases else { continue };
        assert_eq!(g.basis, GasBasis::Co2e, "{}", f.id);
        let parts = [g.co2, g.ch4, g.n2o];
        if parts.iter().any(Option::is_none) {
            continue;
        }
        let sum: Decimal = parts.into_iter().flatten().sum();
        let tolerance = f.co2e_kg.abs() * Decimal::new(1, 13) + Decimal::new(1, 20);
        assert!(
            (sum - f.co2e_kg).abs() <= tolerance,
            "{} ({}): {sum} != {}",
            f.id,
            f.source_id,
            f.co2e_kg
        );
        checked += 1;
    }
    assert!(
        checked > 1000,
        "only {checked} DESNZ groups have all three gases"
    );
}

#[test]
fn epa_totals_are_exactly_their_gas_masses_on_their_gwp_set() {
    for f in Library::shipped()
        .factors()
        .iter()
        .filter(|f| f.source == Source::EpaHub)
    {
        let Some(g) = f.gases else { continue };
        assert_eq!(g.basis, GasBasis::Mass, "{}", f.id);
        let total = g.co2.unwrap_or_default()
            + g.ch4.unwrap_or_default() * f.gwp_set.ch4()
            + g.n2o.unwrap_or_default() * f.gwp_set.n2o();
        assert_eq!(total, f.co2e_kg, "{} {}", f.id, f.name);
    }
}

#[test]
fn ar6_restates_desnz_gases_from_their_ar5_co2e() {
    // CO2 + CH4e × 27/28 + N2Oe × 273/265, per kWh of natural gas (gross CV), for 28 000 kWh:
    // 28000 × (0.18256 + 0.00028 × 27/28 + 0.0000889261744966443 × 273/265).
    let gross = factor(
        Source::Desnz,
        2023,
        "1_100_1004_6_1",
        "kWh",
        Some(CalorificBasis::Gross),
    );
    let ar6 = estimate(gross, dec("28000"), unit("kWh"), GwpSet::Ar6).unwrap();
    let expected = dec("28000") * dec("0.18256")
        + dec("28000") * dec("0.00027")
        + dec("28000") * dec("0.0000889261744966443") * dec("273") / dec("265");
    assert!(
        (ar6.co2e_kg - expected).abs() < dec("0.000000000000000001"),
        "{} vs {expected}",
        ar6.co2e_kg
    );
    assert!(!ar6.exact, "N2O × 273/265 does not terminate");
}

#[test]
fn activity_ids_are_stable_across_years_and_regions() {
    let library = Library::shipped();
    let grid = Selector {
        activity_id: "electricity-grid",
        ..Selector::default()
    };
    // Several regions: the region must be named.
    assert!(library.select(&grid, unit("kWh")).is_err());
    let uk = library
        .select(
            &Selector {
                region: Some("GB"),
                ..grid.clone()
            },
            unit("kWh"),
        )
        .unwrap();
    assert_eq!(uk.source_id, "7_400_4000_5_1");
    let camx_2023 = library
        .select(
            &Selector {
                region: Some("US-CAMX"),
                year: Some(2023),
                ..grid.clone()
            },
            unit("MWh"),
        )
        .unwrap();
    let camx_latest = library
        .select(
            &Selector {
                region: Some("US-CAMX"),
                ..grid.clone()
            },
            unit("MWh"),
        )
        .unwrap();
    assert_eq!((camx_2023.year, camx_latest.year), (2023, 2024));
    assert_eq!(camx_2023.activity_id, camx_latest.activity_id);

    let gas = Selector {
        activity_id: "fuel-natural_gas",
        region: Some("GB"),
        ..Selector::default()
    };
    let default_basis = library.select(&gas, unit("kWh")).unwrap();
    assert_eq!(default_basis.calorific_basis, Some(CalorificBasis::Gross));
    let net = library
        .select(
            &Selector {
                calorific_basis: Some(CalorificBasis::Net),
                ..gas.clone()
            },
            unit("kWh"),
        )
        .unwrap();
    assert_eq!(net.source_id, "1_100_1004_7_1");
    let by_volume = library.select(&gas, unit("m3")).unwrap();
    assert_eq!(by_volume.unit.symbol, "m3");
}

#[test]
fn the_library_is_well_formed() {
    let library = Library::shipped();
    assert!(library.len() > 3000, "{} factors", library.len());
    for source in Source::ALL {
        assert!(
            library.factors().iter().any(|f| f.source == source),
            "{source}"
        );
    }
    for f in library.factors() {
        assert!(!f.source_id.is_empty(), "{} has no sourceId", f.id);
        assert!(
            f.co2e_kg >= Decimal::ZERO || f.source == Source::Desnz,
            "{}",
            f.id
        );
        assert!(
            f.activity_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
            "{}",
            f.activity_id
        );
    }
}
