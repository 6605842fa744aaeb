//! The personal footprint calculator: a person's home energy, vehicles, flights, public transport,
//! diet and spending, turned into footprint entries on published factors. The methodology is
//! written out in `METHODOLOGY.md`; every rule below is there in words.
//!
//! Each answer becomes one or more [`Entry`]s naming an activity of the factor library, so a
//! personal footprint is calculated, checked and shown line by line exactly like an
//! organisational one. The region picks the factor set: `GB` uses UK DESNZ 2023, `US` (or an eGRID
//! subregion such as `US-CAMX`, which then sets the electricity factor) uses the US EPA GHG
//! Emission Factors Hub. Spending uses USEEIO v1.2 in 2021 US dollars in every region.

use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::DecimalText;
use crate::calculation::{Entry, FactorChoice};
use crate::units::{Unit, UnitType};

/// A quantity: a decimal string and a unit symbol of `GET /v1/units`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quantity {
    #[schema(value_type = String, example = "2700")]
    pub amount: DecimalText,
    #[schema(example = "kWh")]
    pub unit: String,
}

/// Money: a decimal string and an ISO 4217 currency.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Money {
    #[schema(value_type = String, example = "1200")]
    pub amount: DecimalText,
    /// `USD`: the spend factors are per 2021 US dollar; convert other currencies first.
    #[schema(example = "USD")]
    pub currency: String,
}

/// Answers of the personal calculator. Every part is optional; amounts are totals for the period.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonalInput {
    /// `GB`, `US`, or an eGRID subregion such as `US-CAMX` (for a US home's electricity).
    #[schema(example = "GB")]
    pub region: String,
    pub home: Option<Home>,
    #[serde(default)]
    pub vehicles: Vec<Vehicle>,
    #[serde(default)]
    pub flights: Vec<Flight>,
    #[serde(default)]
    pub public_transport: Vec<Ride>,
    /// Food and drink bought, by category.
    #[serde(default)]
    pub diet: Vec<Spend>,
    #[serde(default)]
    pub goods_and_services: Vec<Spend>,
}

/// The home's energy, shared among the people living there.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Home {
    /// People living in the home (default 1); home energy is divided among them.
    pub household_size: Option<u32>,
    /// Electricity from the grid (energy units, e.g. kWh).
    pub electricity: Option<Quantity>,
    #[serde(default)]
    pub fuels: Vec<HomeFuel>,
}

/// A heating fuel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HomeFuelKind {
    NaturalGas,
    HeatingOil,
    Lpg,
    Propane,
    Kerosene,
    Coal,
    Wood,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HomeFuel {
    pub fuel: HomeFuelKind,
    #[schema(value_type = String, example = "11500")]
    pub amount: DecimalText,
    #[schema(example = "kWh")]
    pub unit: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VehicleKind {
    #[default]
    Car,
    /// Pickups, SUVs and vans (US factors).
    LightTruck,
    Motorbike,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VehicleSize {
    Small,
    Medium,
    Large,
    #[default]
    Average,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VehicleFuel {
    Petrol,
    Diesel,
    Hybrid,
    PlugInHybrid,
    BatteryElectric,
    Lpg,
    Cng,
    #[default]
    Unknown,
}

/// A vehicle, by the distance driven or by the fuel bought (give one).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vehicle {
    #[serde(default)]
    pub kind: VehicleKind,
    #[serde(default)]
    pub size: VehicleSize,
    #[serde(default)]
    pub fuel: VehicleFuel,
    /// Distance driven (km or mi).
    pub distance: Option<Quantity>,
    /// Fuel bought (volume or energy), for petrol, diesel and LPG.
    pub fuel_used: Option<Quantity>,
}

/// Flight distance bands as the factor sets define them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlightBand {
    /// Within the UK (GB).
    Domestic,
    /// To or from the UK, up to 3,700 km (GB); under 300 miles (US).
    ShortHaul,
    /// 300 to 2,300 miles (US).
    MediumHaul,
    /// To or from the UK, over 3,700 km (GB); 2,300 miles or more (US).
    LongHaul,
    /// Between two places outside the UK (GB).
    International,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CabinClass {
    #[default]
    Average,
    Economy,
    PremiumEconomy,
    Business,
    First,
}

/// Flights: the distance of one flight, how many times it was flown, and whether each was a
/// return trip.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flight {
    /// Great-circle distance of one way (km, mi or nmi).
    pub distance: Quantity,
    /// How many times (default 1).
    pub trips: Option<u32>,
    /// Each trip out and back (default false).
    #[serde(default)]
    pub return_trip: bool,
    /// Default: from the distance.
    pub band: Option<FlightBand>,
    #[serde(default)]
    pub class: CabinClass,
    /// Include the non-CO2 effects of aviation at altitude (default true where the factor set
    /// publishes them: GB). US factors have none.
    pub radiative_forcing: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    Bus,
    Coach,
    Rail,
    CommuterRail,
    InternationalRail,
    Tram,
    Underground,
    Taxi,
    Ferry,
}

/// A public transport journey, or the sum of many: distance travelled as a passenger.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ride {
    pub mode: TransportMode,
    /// Distance travelled (km, mi, passenger.km or passenger.mi).
    pub distance: Quantity,
}

/// Money spent in one category.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spend {
    /// One of the categories in METHODOLOGY.md (e.g. `red_meat`, `clothing`).
    pub category: String,
    pub spend: Money,
}

/// Food and drink categories and the USEEIO v1.2 NAICS sector each uses.
pub const DIET: [(&str, &str); 15] = [
    ("red_meat", "311611"),
    ("poultry", "311615"),
    ("fish_seafood", "311710"),
    ("milk_dairy", "311511"),
    ("cheese", "311513"),
    ("eggs", "112310"),
    ("vegetables", "111219"),
    ("fruit", "111339"),
    ("bread_bakery", "311812"),
    ("cereals_grains", "311230"),
    ("snacks_sweets", "311340"),
    ("soft_drinks", "312111"),
    ("alcohol", "312120"),
    ("coffee_tea", "311920"),
    ("restaurants", "722511"),
];

/// Goods and services categories and the USEEIO v1.2 NAICS sector each uses.
pub const GOODS_AND_SERVICES: [(&str, &str); 17] = [
    ("clothing", "315280"),
    ("footwear", "316210"),
    ("electronics", "334111"),
    ("phones", "334220"),
    ("furniture", "337121"),
    ("household_appliances", "335220"),
    ("toiletries", "325620"),
    ("medicines", "325412"),
    ("books", "511130"),
    ("newspapers", "511110"),
    ("toys_sports_goods", "339920"),
    ("hotels", "721110"),
    ("healthcare", "621111"),
    ("education", "611310"),
    ("recreation", "713940"),
    ("phone_internet", "517312"),
    ("personal_care", "812112"),
];

/// The calculator's categories, as `byCategory` names them.
pub mod category {
    pub const HOME_ENERGY: &str = "home_energy";
    pub const VEHICLES: &str = "vehicles";
    pub const FLIGHTS: &str = "flights";
    pub const PUBLIC_TRANSPORT: &str = "public_transport";
    pub const DIET: &str = "diet";
    pub const GOODS_AND_SERVICES: &str = "goods_and_services";
}

/// One calculator answer as a footprint entry, with the input field it came from.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Path of the answer in the request, e.g. `personal.flights[1]`.
    pub field: String,
    /// Path of the object holding the answer's `amount` and `unit` (its `distance` for flights
    /// and rides, else the answer itself).
    pub quantity_field: String,
    pub label: String,
    pub category: &'static str,
    pub activity_id: String,
    pub region: String,
    pub amount: Decimal,
    pub unit: String,
    pub share_of: Option<u32>,
}

impl Planned {
    pub fn entry(&self) -> Entry<'_> {
        Entry {
            label: Some(&self.label),
            category: Some(self.category),
            factor: FactorChoice {
                activity_id: Some(&self.activity_id),
                region: Some(&self.region),
                unit: &self.unit,
                ..FactorChoice::default()
            },
            amount: self.amount,
            share_of: self.share_of,
            ..Entry::default()
        }
    }
}

/// A calculator answer that cannot be used, with the path of its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactorSet {
    Desnz,
    Epa,
}

struct Planner<'a> {
    set: FactorSet,
    /// The electricity region (`GB`, `US` or an eGRID subregion).
    grid: &'a str,
    planned: Vec<Planned>,
    refused: Vec<Refusal>,
}

impl Planner<'_> {
    fn region(&self) -> &'static str {
        match self.set {
            FactorSet::Desnz => "GB",
            FactorSet::Epa => "US",
        }
    }

    fn refuse(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.refused.push(Refusal {
            field: field.into(),
            message: message.into(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        field: String,
        label: String,
        category: &'static str,
        activity_id: String,
        region: &str,
        amount: Decimal,
        unit: &str,
        share_of: Option<u32>,
    ) {
        self.planned.push(Planned {
            quantity_field: field.clone(),
            field,
            label,
            category,
            activity_id,
            region: region.to_owned(),
            amount,
            unit: unit.to_owned(),
            share_of,
        });
    }

    /// Says where the last planned answer's amount and unit are, when not on the answer itself.
    fn quantity_at(&mut self, path: String) {
        if let Some(last) = self.planned.last_mut() {
            last.quantity_field = path;
        }
    }

    fn home(&mut self, home: &Home) {
        let share_of = match home.household_size {
            None => None,
            Some(n @ 1..=50) => Some(n),
            Some(_) => {
                self.refuse("personal.home.householdSize", "must be 1 to 50");
                return;
            }
        };
        if let Some(power) = &home.electricity {
            let field = "personal.home.electricity".to_owned();
            let grid = self.grid.to_owned();
            self.plan(
                field.clone(),
                "Home electricity".into(),
                category::HOME_ENERGY,
                "electricity-grid".into(),
                &grid,
                power.amount.0,
                &power.unit,
                share_of,
            );
            if self.set == FactorSet::Desnz {
                self.plan(
                    field,
                    "Home electricity: transmission and distribution losses".into(),
                    category::HOME_ENERGY,
                    "transmission_and_distribution-t_and_d_uk_electricity-electricity_uk".into(),
                    "GB",
                    power.amount.0,
                    &power.unit,
                    share_of,
                );
            }
        }
        for (i, fuel) in home.fuels.iter().enumerate() {
            let field = format!("personal.home.fuels[{i}]");
            let activities: &[&str] = match (self.set, fuel.fuel) {
                (_, HomeFuelKind::NaturalGas) => &["fuel-natural_gas"],
                (FactorSet::Desnz, HomeFuelKind::HeatingOil | HomeFuelKind::Kerosene) => {
                    &["fuels-liquid_fuels-burning_oil"]
                }
                (FactorSet::Desnz, HomeFuelKind::Lpg) => &["fuels-gaseous_fuels-lpg"],
                (FactorSet::Desnz, HomeFuelKind::Propane) => &["fuels-gaseous_fuels-propane"],
                (FactorSet::Desnz, HomeFuelKind::Coal) => &["fuels-solid_fuels-coal_domestic"],
                (FactorSet::Desnz, HomeFuelKind::Wood) => &[
                    "bioenergy-biomass-wood_logs",
                    "outside_of_scopes-biomass-wood_logs",
                ],
                (FactorSet::Epa, HomeFuelKind::HeatingOil) => {
                    &["epa-stationary_combustion-distillate_fuel_oil_no_2"]
                }
                (FactorSet::Epa, HomeFuelKind::Kerosene) => &["epa-stationary_combustion-kerosene"],
                (FactorSet::Epa, HomeFuelKind::Lpg) => {
                    &["epa-stationary_combustion-liquefied_petroleum_gases_lpg"]
                }
                (FactorSet::Epa, HomeFuelKind::Propane) => &["epa-stationary_combustion-propane"],
                (FactorSet::Epa, HomeFuelKind::Coal | HomeFuelKind::Wood) => {
                    self.refuse(
                        format!("{field}.fuel"),
                        "the US factor set has no residential coal or wood factor; use natural_gas, heating_oil, kerosene, lpg or propane",
                    );
                    continue;
                }
            };
            let region = self.region();
            for activity in activities {
                self.plan(
                    field.clone(),
                    format!("Home heating: {}", fuel_name(fuel.fuel)),
                    category::HOME_ENERGY,
                    (*activity).to_owned(),
                    region,
                    fuel.amount.0,
                    &fuel.unit,
                    share_of,
                );
            }
        }
    }

    fn vehicle(&mut self, i: usize, vehicle: &Vehicle) {
        let field = format!("personal.vehicles[{i}]");
        let region = self.region();
        match (&vehicle.distance, &vehicle.fuel_used) {
            (Some(_), Some(_)) | (None, None) => {
                self.refuse(field, "give either distance or fuelUsed, not both");
            }
            (None, Some(fuel)) => {
                let activity = match (self.set, vehicle.fuel) {
                    (_, VehicleFuel::Petrol) => "fuel-petrol",
                    (_, VehicleFuel::Diesel) => "fuel-diesel",
                    (FactorSet::Desnz, VehicleFuel::Lpg) => "fuels-gaseous_fuels-lpg",
                    (FactorSet::Epa, VehicleFuel::Lpg) => {
                        "epa-mobile_combustion-liquefied_petroleum_gases_lpg"
                    }
                    _ => {
                        self.refuse(
                            format!("{field}.fuel"),
                            "fuelUsed works for petrol, diesel and lpg; for other vehicles give the distance",
                        );
                        return;
                    }
                };
                self.plan(
                    format!("{field}.fuelUsed"),
                    format!("Vehicle fuel: {}", vehicle_fuel_name(vehicle.fuel)),
                    category::VEHICLES,
                    activity.into(),
                    region,
                    fuel.amount.0,
                    &fuel.unit,
                    None,
                );
            }
            (Some(distance), None) => {
                let activities = match self.set {
                    FactorSet::Desnz => desnz_vehicle(vehicle),
                    FactorSet::Epa => epa_vehicle(vehicle),
                };
                match activities {
                    Err((part, message)) => self.refuse(format!("{field}.{part}"), message),
                    Ok(activities) => {
                        for activity in activities {
                            self.plan(
                                format!("{field}.distance"),
                                format!(
                                    "{} ({}, {})",
                                    vehicle_kind_name(vehicle.kind),
                                    size_name(vehicle.size),
                                    vehicle_fuel_name(vehicle.fuel)
                                ),
                                category::VEHICLES,
                                activity,
                                region,
                                distance.amount.0,
                                &distance.unit,
                                None,
                            );
                        }
                    }
                }
            }
        }
    }

    fn flight(&mut self, i: usize, flight: &Flight) {
        let field = format!("personal.flights[{i}]");
        let trips = match flight.trips {
            None => 1,
            Some(n @ 1..=1000) => n,
            Some(_) => return self.refuse(format!("{field}.trips"), "must be 1 to 1000"),
        };
        let legs = Decimal::from(trips) * Decimal::from(if flight.return_trip { 2 } else { 1 });
        let Some(km) = distance_km(&flight.distance) else {
            return self.refuse(
                format!("{field}.distance.unit"),
                "must be a distance unit: km, mi or nmi",
            );
        };
        let activity = match self.set {
            FactorSet::Desnz => {
                let band = flight.band.unwrap_or(if km <= Decimal::from(3700) {
                    FlightBand::ShortHaul
                } else {
                    FlightBand::LongHaul
                });
                let band_id = match band {
                    FlightBand::Domestic => "domestic_to_from_uk",
                    FlightBand::ShortHaul => "short_haul_to_from_uk",
                    FlightBand::LongHaul => "long_haul_to_from_uk",
                    FlightBand::International => "international_to_from_non_uk",
                    FlightBand::MediumHaul => {
                        return self.refuse(
                            format!("{field}.band"),
                            "GB factors have domestic, short_haul, long_haul and international bands",
                        );
                    }
                };
                let class = match flight.class {
                    CabinClass::Average => "average_passenger",
                    CabinClass::Economy => "economy_class",
                    CabinClass::PremiumEconomy => "premium_economy_class",
                    CabinClass::Business => "business_class",
                    CabinClass::First => "first_class",
                };
                let rf = if flight.radiative_forcing.unwrap_or(true) {
                    "with_rf"
                } else {
                    "without_rf"
                };
                format!("business_travel_air-flights-{band_id}-{class}-{rf}")
            }
            FactorSet::Epa => {
                if flight.radiative_forcing == Some(true) {
                    return self.refuse(
                        format!("{field}.radiativeForcing"),
                        "US EPA air factors do not include radiative forcing",
                    );
                }
                if flight.class != CabinClass::Average {
                    return self.refuse(
                        format!("{field}.class"),
                        "US EPA air factors are per average passenger; leave class out",
                    );
                }
                let miles = km / Decimal::new(1_609_344, 6);
                let band = flight.band.unwrap_or(if miles < Decimal::from(300) {
                    FlightBand::ShortHaul
                } else if miles < Decimal::from(2300) {
                    FlightBand::MediumHaul
                } else {
                    FlightBand::LongHaul
                });
                match band {
                    FlightBand::ShortHaul => "epa-business_travel-air_travel_short_haul_300_miles",
                    FlightBand::MediumHaul => {
                        "epa-business_travel-air_travel_medium_haul_300_miles_2300_miles"
                    }
                    FlightBand::LongHaul => "epa-business_travel-air_travel_long_haul_2300_miles",
                    FlightBand::Domestic | FlightBand::International => {
                        return self.refuse(
                            format!("{field}.band"),
                            "US factors have short_haul, medium_haul and long_haul bands",
                        );
                    }
                }
                .to_owned()
            }
        };
        let region = self.region();
        let Some(passenger_km) = km.checked_mul(legs) else {
            return self.refuse(format!("{field}.distance.amount"), "is too large");
        };
        self.plan(
            field.clone(),
            format!(
                "Flights: {} × {} km{}",
                trips,
                km.normalize(),
                if flight.return_trip { ", return" } else { "" }
            ),
            category::FLIGHTS,
            activity,
            region,
            passenger_km,
            "passenger.km",
            None,
        );
        self.quantity_at(format!("{field}.distance"));
    }

    fn ride(&mut self, i: usize, ride: &Ride) {
        let field = format!("personal.publicTransport[{i}]");
        let activity = match (self.set, ride.mode) {
            (FactorSet::Desnz, TransportMode::Bus) => "business_travel_land-bus-average_local_bus",
            (FactorSet::Desnz, TransportMode::Coach) => "business_travel_land-bus-coach",
            (FactorSet::Desnz, TransportMode::Rail | TransportMode::CommuterRail) => {
                "business_travel_land-rail-national_rail"
            }
            (FactorSet::Desnz, TransportMode::InternationalRail) => {
                "business_travel_land-rail-international_rail"
            }
            (FactorSet::Desnz, TransportMode::Tram) => {
                "business_travel_land-rail-light_rail_and_tram"
            }
            (FactorSet::Desnz, TransportMode::Underground) => {
                "business_travel_land-rail-london_underground"
            }
            (FactorSet::Desnz, TransportMode::Taxi) => "business_travel_land-taxis-regular_taxi",
            (FactorSet::Desnz, TransportMode::Ferry) => "business_travel_sea-ferry-foot_passenger",
            (FactorSet::Epa, TransportMode::Bus | TransportMode::Coach) => {
                "epa-business_travel-bus"
            }
            (FactorSet::Epa, TransportMode::Rail) => {
                "epa-business_travel-intercity_rail_national_average"
            }
            (FactorSet::Epa, TransportMode::CommuterRail) => "epa-business_travel-commuter_rail",
            (FactorSet::Epa, TransportMode::Tram | TransportMode::Underground) => {
                "epa-business_travel-transit_rail_i_e_subway_tram"
            }
            (
                FactorSet::Epa,
                TransportMode::Taxi | TransportMode::Ferry | TransportMode::InternationalRail,
            ) => {
                return self.refuse(
                    format!("{field}.mode"),
                    "the US factor set has bus, coach, rail, commuter_rail, tram and underground",
                );
            }
        };
        let (amount, unit) = match Unit::parse(&ride.distance.unit).map(|u| u.unit_type) {
            Some(UnitType::PassengerDistance) => {
                (ride.distance.amount.0, ride.distance.unit.clone())
            }
            Some(UnitType::Distance) => match distance_km(&ride.distance) {
                Some(km) => (km, "passenger.km".to_owned()),
                None => {
                    return self.refuse(format!("{field}.distance.amount"), "is too large");
                }
            },
            _ => {
                return self.refuse(
                    format!("{field}.distance.unit"),
                    "must be a distance (km, mi) or passenger distance (passenger.km, passenger.mi)",
                );
            }
        };
        let region = self.region();
        self.plan(
            field.clone(),
            format!("Public transport: {}", mode_name(ride.mode)),
            category::PUBLIC_TRANSPORT,
            activity.into(),
            region,
            amount,
            &unit,
            None,
        );
        self.quantity_at(format!("{field}.distance"));
    }

    fn spend(
        &mut self,
        list: &str,
        i: usize,
        spend: &Spend,
        table: &[(&str, &str)],
        category: &'static str,
    ) {
        let field = format!("personal.{list}[{i}]");
        let Some((name, naics)) = table.iter().find(|(name, _)| *name == spend.category) else {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            return self.refuse(
                format!("{field}.category"),
                format!("must be one of: {}", names.join(", ")),
            );
        };
        if !spend.spend.currency.eq_ignore_ascii_case("USD") {
            return self.refuse(
                format!("{field}.spend.currency"),
                "spend factors are per 2021 US dollar (USEEIO v1.2); convert the amount to USD first",
            );
        }
        self.plan(
            format!("{field}.spend"),
            format!("Spending: {}", name.replace('_', " ")),
            category,
            format!("useeio-naics_{naics}"),
            "US",
            spend.spend.amount.0,
            "USD",
            None,
        );
    }
}

/// A distance in kilometres, exactly (km, m, mi and nmi all convert exactly).
fn distance_km(quantity: &Quantity) -> Option<Decimal> {
    let unit = Unit::parse(&quantity.unit)?;
    let km = Unit::parse("km").expect("km is a unit");
    match unit.unit_type {
        UnitType::Distance => crate::units::convert(quantity.amount.0, unit, km)
            .ok()
            .map(|e| e.value.normalize()),
        _ => None,
    }
}

fn desnz_vehicle(vehicle: &Vehicle) -> Result<Vec<String>, (&'static str, String)> {
    let size = size_name(vehicle.size);
    match vehicle.kind {
        VehicleKind::Motorbike => {
            if vehicle.fuel != VehicleFuel::Unknown && vehicle.fuel != VehicleFuel::Petrol {
                return Err((
                    "fuel",
                    "GB motorbike factors are for petrol motorbikes".into(),
                ));
            }
            Ok(vec![format!("passenger_vehicles-motorbike-{size}")])
        }
        VehicleKind::LightTruck => Err((
            "kind",
            "GB factors have cars and motorbikes; use a large car for a pickup or SUV".into(),
        )),
        VehicleKind::Car => {
            let fuel = match vehicle.fuel {
                VehicleFuel::Petrol => "petrol",
                VehicleFuel::Diesel => "diesel",
                VehicleFuel::Hybrid => "hybrid",
                VehicleFuel::PlugInHybrid => "plug_in_hybrid_electric_vehicle",
                VehicleFuel::BatteryElectric => "battery_electric_vehicle",
                VehicleFuel::Lpg => "lpg",
                VehicleFuel::Cng => "cng",
                VehicleFuel::Unknown => "unknown",
            };
            let car = format!("{size}_car");
            let mut activities = vec![format!("passenger_vehicles-cars_by_size-{car}-{fuel}")];
            if matches!(
                vehicle.fuel,
                VehicleFuel::PlugInHybrid | VehicleFuel::BatteryElectric
            ) {
                activities.push(format!("uk_electricity_for_evs-cars_by_size-{car}-{fuel}"));
            }
            Ok(activities)
        }
    }
}

fn epa_vehicle(vehicle: &Vehicle) -> Result<Vec<String>, (&'static str, String)> {
    if vehicle.size != VehicleSize::Average {
        return Err((
            "size",
            "US EPA factors are per average vehicle of each kind; leave size out".into(),
        ));
    }
    if matches!(
        vehicle.fuel,
        VehicleFuel::BatteryElectric | VehicleFuel::PlugInHybrid
    ) {
        return Err((
            "fuel",
            "US EPA has no per-mile factor for plug-in vehicles; count their charging in home electricity".into(),
        ));
    }
    let activity = match vehicle.kind {
        VehicleKind::Car => "epa-business_travel-passenger_car",
        VehicleKind::LightTruck => "epa-business_travel-light_duty_truck",
        VehicleKind::Motorbike => "epa-business_travel-motorcycle",
    };
    Ok(vec![activity.to_owned()])
}

fn size_name(size: VehicleSize) -> &'static str {
    match size {
        VehicleSize::Small => "small",
        VehicleSize::Medium => "medium",
        VehicleSize::Large => "large",
        VehicleSize::Average => "average",
    }
}

fn vehicle_kind_name(kind: VehicleKind) -> &'static str {
    match kind {
        VehicleKind::Car => "Car",
        VehicleKind::LightTruck => "Light truck",
        VehicleKind::Motorbike => "Motorbike",
    }
}

fn vehicle_fuel_name(fuel: VehicleFuel) -> &'static str {
    match fuel {
        VehicleFuel::Petrol => "petrol",
        VehicleFuel::Diesel => "diesel",
        VehicleFuel::Hybrid => "hybrid",
        VehicleFuel::PlugInHybrid => "plug-in hybrid",
        VehicleFuel::BatteryElectric => "battery electric",
        VehicleFuel::Lpg => "LPG",
        VehicleFuel::Cng => "CNG",
        VehicleFuel::Unknown => "unknown fuel",
    }
}

fn fuel_name(fuel: HomeFuelKind) -> &'static str {
    match fuel {
        HomeFuelKind::NaturalGas => "natural gas",
        HomeFuelKind::HeatingOil => "heating oil",
        HomeFuelKind::Lpg => "LPG",
        HomeFuelKind::Propane => "propane",
        HomeFuelKind::Kerosene => "kerosene",
        HomeFuelKind::Coal => "coal",
        HomeFuelKind::Wood => "wood",
    }
}

fn mode_name(mode: TransportMode) -> &'static str {
    match mode {
        TransportMode::Bus => "bus",
        TransportMode::Coach => "coach",
        TransportMode::Rail => "rail",
        TransportMode::CommuterRail => "commuter rail",
        TransportMode::InternationalRail => "international rail",
        TransportMode::Tram => "tram",
        TransportMode::Underground => "underground",
        TransportMode::Taxi => "taxi",
        TransportMode::Ferry => "ferry",
    }
}

/// Most answers one personal footprint takes in all lists together: the same bound as a
/// footprint's entries (each answer becomes at least one entry).
pub const MAX_ANSWERS: usize = 1000;

impl PersonalInput {
    /// How many list answers the input holds (vehicles, flights, rides, spends, home fuels).
    pub fn answers(&self) -> usize {
        self.vehicles.len()
            + self.flights.len()
            + self.public_transport.len()
            + self.diet.len()
            + self.goods_and_services.len()
            + self.home.as_ref().map_or(0, |h| h.fuels.len())
    }
}

/// Turns the calculator's answers into footprint entries, or says which answers cannot be used.
pub fn plan(input: &PersonalInput) -> Result<Vec<Planned>, Vec<Refusal>> {
    if input.answers() > MAX_ANSWERS {
        return Err(vec![Refusal {
            field: "personal".into(),
            message: format!(
                "holds {} answers; at most {MAX_ANSWERS} in all lists together (send more as entries through an activity import)",
                input.answers()
            ),
        }]);
    }
    let region = input.region.trim();
    let set = if region.eq_ignore_ascii_case("GB") || region.eq_ignore_ascii_case("UK") {
        FactorSet::Desnz
    } else if region.eq_ignore_ascii_case("US")
        || region
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("US-"))
    {
        FactorSet::Epa
    } else {
        return Err(vec![Refusal {
            field: "personal.region".into(),
            message: "the personal calculator has factor sets for GB and US (or a US eGRID subregion such as US-CAMX)".into(),
        }]);
    };
    let grid = match set {
        FactorSet::Desnz => "GB".to_owned(),
        FactorSet::Epa => region.to_ascii_uppercase(),
    };
    let mut planner = Planner {
        set,
        grid: &grid,
        planned: Vec::new(),
        refused: Vec::new(),
    };
    if let Some(home) = &input.home {
        planner.home(home);
    }
    for (i, vehicle) in input.vehicles.iter().enumerate() {
        planner.vehicle(i, vehicle);
    }
    for (i, flight) in input.flights.iter().enumerate() {
        planner.flight(i, flight);
    }
    for (i, ride) in input.public_transport.iter().enumerate() {
        planner.ride(i, ride);
    }
    for (i, spend) in input.diet.iter().enumerate() {
        planner.spend("diet", i, spend, &DIET, category::DIET);
    }
    for (i, spend) in input.goods_and_services.iter().enumerate() {
        planner.spend(
            "goodsAndServices",
            i,
            spend,
            &GOODS_AND_SERVICES,
            category::GOODS_AND_SERVICES,
        );
    }
    if !planner.refused.is_empty() {
        return Err(planner.refused);
    }
    if planner.planned.is_empty() {
        return Err(vec![Refusal {
            field: "personal".into(),
            message: "answer at least one part: home, vehicles, flights, publicTransport, diet or goodsAndServices".into(),
        }]);
    }
    Ok(planner.planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factors::Library;

    #[test]
    fn more_answers_than_a_footprint_holds_are_refused_whatever_list_they_are_in() {
        let km = |n: &str| serde_json::json!({"amount": n, "unit": "km"});
        let flight = serde_json::json!({"distance": km("900")});
        let ride = serde_json::json!({"mode": "bus", "distance": km("10")});
        let input = |flights: usize, rides: usize| -> PersonalInput {
            serde_json::from_value(serde_json::json!({
                "region": "GB",
                "flights": vec![flight.clone(); flights],
                "publicTransport": vec![ride.clone(); rides],
            }))
            .unwrap()
        };
        let refused = plan(&input(3_000, 0)).unwrap_err();
        assert_eq!(refused[0].field, "personal");
        assert!(
            refused[0].message.contains("3000 answers"),
            "{}",
            refused[0].message
        );
        // The bound is on all lists together, not on each.
        assert!(plan(&input(600, 600)).is_err());
        assert_eq!(input(500, 500).answers(), MAX_ANSWERS);
    }

    #[test]
    fn every_activity_the_calculator_can_name_exists_in_the_library() {
        let library = Library::shipped();
        let exists = |activity: &str| library.factors().iter().any(|f| f.activity_id == activity);
        for (_, naics) in DIET.iter().chain(GOODS_AND_SERVICES.iter()) {
            assert!(exists(&format!("useeio-naics_{naics}")), "NAICS {naics}");
        }
        let vehicles = [
            VehicleFuel::Petrol,
            VehicleFuel::Diesel,
            VehicleFuel::Hybrid,
            VehicleFuel::PlugInHybrid,
            VehicleFuel::BatteryElectric,
            VehicleFuel::Unknown,
        ];
        for size in [
            VehicleSize::Small,
            VehicleSize::Medium,
            VehicleSize::Large,
            VehicleSize::Average,
        ] {
            for fuel in vehicles {
                let car = Vehicle {
                    kind: VehicleKind::Car,
                    size,
                    fuel,
                    distance: None,
                    fuel_used: None,
                };
                for activity in desnz_vehicle(&car).unwrap() {
                    assert!(exists(&activity), "{activity}");
                }
            }
            let bike = Vehicle {
                kind: VehicleKind::Motorbike,
                size,
                fuel: VehicleFuel::Unknown,
                distance: None,
                fuel_used: None,
            };
            assert!(exists(&desnz_vehicle(&bike).unwrap()[0]));
        }
        for kind in [
            VehicleKind::Car,
            VehicleKind::LightTruck,
            VehicleKind::Motorbike,
        ] {
            let vehicle = Vehicle {
                kind,
                size: VehicleSize::Average,
                fuel: VehicleFuel::Unknown,
                distance: None,
                fuel_used: None,
            };
            assert!(exists(&epa_vehicle(&vehicle).unwrap()[0]));
        }
    }
}
