//! The activity file the import benchmarks use: an organisation's year of activity data, many rows
//! over a realistic mix of 20 activity/region/unit combinations (fuels, grid electricity in several
//! eGRID subregions, freight, travel, spend), with labels and some supplier factors.

use std::fmt::Write as _;

/// (activityId, region, unit, supplier factor) of the rows, cycled.
const MIX: [(&str, &str, &str, &str); 20] = [
    ("fuel-natural_gas", "GB", "kWh", ""),
    ("electricity-grid", "GB", "kWh", "0.02"),
    ("fuel-diesel", "GB", "l", ""),
    ("fuel-petrol", "GB", "l", ""),
    ("electricity-grid", "US-CAMX", "MWh", ""),
    ("electricity-grid", "US-ERCT", "kWh", "0.1"),
    ("electricity-grid", "US-NYCW", "MWh", ""),
    ("fuel-natural_gas", "US", "therm", ""),
    ("fuel-diesel", "US", "gal_us", ""),
    (
        "business_travel_air-flights-long_haul_to_from_uk-economy_class-with_rf",
        "GB",
        "passenger.km",
        "",
    ),
    (
        "business_travel_land-rail-national_rail",
        "GB",
        "passenger.km",
        "",
    ),
    ("epa-business_travel-passenger_car", "US", "mi", ""),
    ("useeio-naics_541511", "US", "USD", ""),
    ("useeio-naics_334111", "US", "USD", ""),
    ("useeio-naics_721110", "US", "USD", ""),
    ("fuels-gaseous_fuels-lpg", "GB", "l", ""),
    (
        "heat_and_steam-heat_and_steam-district_heat_and_steam",
        "GB",
        "kWh",
        "",
    ),
    (
        "epa-transport_and_distribution-medium_and_heavy_duty_truck",
        "US",
        "short_ton.mi",
        "",
    ),
    ("fuel-natural_gas", "GB", "m3", ""),
    ("electricity-grid", "US-RFCE", "kWh", ""),
];

/// A CSV activity file of `rows` rows (plus the header).
pub fn activity_file(rows: usize) -> Vec<u8> {
    let mut file = String::with_capacity(rows * 64);
    file.push_str("activityId,region,amount,unit,label,supplierFactor\n");
    for i in 0..rows {
        let (activity, region, unit, supplier) = MIX[i % MIX.len()];
        let _ = writeln!(
            file,
            "{activity},{region},{}.{:03},{unit},Site {},{supplier}",
            1 + (i * 7919) % 100_000,
            i % 1000,
            i % 500
        );
    }
    file.into_bytes()
}
