//! Settings an admin changes at run time, stored one JSON value per key in the `settings`
//! table. A key never written takes its default. Every value is validated before it is stored,
//! so what [`load`] reads is always usable.

use crate::db::statements::Cached;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    config::{Config, TagThresholds},
    error::{AppError, AppResult},
    tenant::TenantId,
};

/// A credit package as stored: its price is explicit, or `credits * price_per_credit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageSetting {
    pub id: String,
    pub name: String,
    pub credits: i64,
    /// In the currency's minor unit (cents); absent means credits × price_per_credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    pub credit_packages: Vec<PackageSetting>,
    /// Minor units (cents) per credit, for packages without an explicit price.
    pub price_per_credit: i64,
    /// ISO 4217, lower case, as Stripe writes it.
    pub currency: String,
    /// Below this balance an account is "low" and its owner is warned by email once.
    pub low_credit_threshold: i64,
    /// The least balance an outbound call needs (a batch: one credit per contact).
    pub min_call_balance: i64,
    /// The most contact rows one uploaded file may hold.
    pub contact_import_max_rows: i64,
    /// The largest contact file accepted, in bytes.
    pub contact_import_max_bytes: i64,
    /// Total scores (0-100) from which a lead is hot or warm; warm is below hot.
    pub lead_hot_threshold: i64,
    pub lead_warm_threshold: i64,
    /// ISO 3166 alpha-2 region for phone numbers written without a country code.
    pub default_phone_region: String,
    /// Countries (ISO 3166 alpha-2) outbound calls may dial (toll-fraud protection).
    pub outbound_countries: Vec<String>,
    /// Number types outbound calls may dial (see `phone::NUMBER_TYPES`); premium-rate,
    /// shared-cost and unknown numbers are not dialled unless an admin adds them.
    pub outbound_number_types: Vec<String>,
    /// The most agents (not deleted) one tenant may have; each is an ElevenLabs agent of the
    /// shared workspace.
    pub max_agents_per_tenant: i64,
}

impl Settings {
    /// The defaults: the deployment's configuration (environment), else the built-in values.
    pub fn defaults(config: &Config) -> Self {
        Self {
            min_call_balance: config.min_call_balance,
            contact_import_max_rows: i64::try_from(config.contact_import_max_rows)
                .unwrap_or(i64::MAX),
            contact_import_max_bytes: i64::try_from(config.contact_import_max_bytes)
                .unwrap_or(i64::MAX),
            lead_hot_threshold: config.lead_tags.hot,
            lead_warm_threshold: config.lead_tags.warm,
            default_phone_region: config.default_phone_region.as_ref().to_owned(),
            outbound_countries: vec![config.default_phone_region.as_ref().to_owned()],
            ..Self::default()
        }
    }

    pub fn lead_tags(&self) -> TagThresholds {
        TagThresholds {
            hot: self.lead_hot_threshold,
            warm: self.lead_warm_threshold,
        }
    }

    /// Whether an outbound call may dial `destination`.
    pub fn allows_destination(&self, destination: &crate::phone::Destination) -> bool {
        destination
            .country
            .as_ref()
            .is_some_and(|country| self.outbound_countries.contains(country))
            && self
                .outbound_number_types
                .iter()
                .any(|kind| kind == destination.number_type)
    }

    pub fn phone_region(&self) -> phonenumber::country::Id {
        self.default_phone_region
            .parse()
            .unwrap_or(phonenumber::country::Id::US)
    }
}

impl Default for Settings {
    fn default() -> Self {
        let package = |id: &str, name: &str, credits, price| PackageSetting {
            id: id.into(),
            name: name.into(),
            credits,
            price,
        };
        Self {
            credit_packages: vec![
                package("starter", "Starter: 100 minutes", 100, None),
                package("growth", "Growth: 500 minutes", 500, Some(4_500)),
                package("scale", "Scale: 2,000 minutes", 2_000, Some(16_000)),
            ],
            price_per_credit: 10,
            currency: "usd".into(),
            low_credit_threshold: 5,
            min_call_balance: 1,
            contact_import_max_rows: 1000,
            contact_import_max_bytes: 4 << 20,
            lead_hot_threshold: 70,
            lead_warm_threshold: 40,
            default_phone_region: "US".into(),
            outbound_countries: vec!["US".into()],
            outbound_number_types: ["fixed_line", "mobile", "fixed_line_or_mobile", "toll_free"]
                .map(String::from)
                .to_vec(),
            max_agents_per_tenant: 25,
        }
    }
}

/// Currencies whose minor unit is a thousandth; our prices and receipts count in cents or
/// whole units only.
const THREE_DECIMAL_CURRENCIES: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// The smallest charge Stripe accepts in USD (and about that in other currencies), in cents.
pub const MIN_PACKAGE_PRICE: i64 = 50;
const MAX_PACKAGE_PRICE: i64 = 99_999_999;
const MAX_PACKAGE_CREDITS: i64 = 1_000_000;

impl Settings {
    pub fn validate(&self) -> AppResult<()> {
        if self.credit_packages.is_empty() || self.credit_packages.len() > 20 {
            return Err(AppError::validation(
                "credit_packages",
                "there must be 1 to 20 packages",
            ));
        }
        if !(1..=100_000).contains(&self.price_per_credit) {
            return Err(AppError::validation(
                "price_per_credit",
                "must be 1 to 100000 minor units",
            ));
        }
        if !crate::clients::stripe::is_currency(&self.currency)
            || THREE_DECIMAL_CURRENCIES.contains(&self.currency.as_str())
        {
            return Err(AppError::validation(
                "currency",
                "must be a lower-case ISO 4217 code Stripe charges in, such as usd (currencies with three decimals are not supported)",
            ));
        }
        if !(0..=MAX_PACKAGE_CREDITS).contains(&self.low_credit_threshold) {
            return Err(AppError::validation(
                "low_credit_threshold",
                format!("must be 0 to {MAX_PACKAGE_CREDITS}"),
            ));
        }
        let within = |field: &str, value: i64, range: std::ops::RangeInclusive<i64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(AppError::validation(
                    field,
                    format!("must be {} to {}", range.start(), range.end()),
                ))
            }
        };
        within("min_call_balance", self.min_call_balance, 0..=1_000_000)?;
        within(
            "contact_import_max_rows",
            self.contact_import_max_rows,
            1..=100_000,
        )?;
        within(
            "contact_import_max_bytes",
            self.contact_import_max_bytes,
            1024..=50 << 20,
        )?;
        within("lead_hot_threshold", self.lead_hot_threshold, 1..=100)?;
        within(
            "max_agents_per_tenant",
            self.max_agents_per_tenant,
            1..=1000,
        )?;
        within("lead_warm_threshold", self.lead_warm_threshold, 0..=99)?;
        if self.lead_warm_threshold >= self.lead_hot_threshold {
            return Err(AppError::validation(
                "lead_warm_threshold",
                "must be below lead_hot_threshold",
            ));
        }
        if !is_region(&self.default_phone_region) {
            return Err(AppError::validation(
                "default_phone_region",
                "must be an upper-case ISO 3166 alpha-2 code such as US or GB",
            ));
        }
        if self.outbound_countries.len() > 300
            || !self.outbound_countries.iter().all(|c| is_region(c))
        {
            return Err(AppError::validation(
                "outbound_countries",
                "must list upper-case ISO 3166 alpha-2 codes such as US or GB",
            ));
        }
        if let Some(unknown) = self
            .outbound_number_types
            .iter()
            .find(|kind| !crate::phone::NUMBER_TYPES.contains(&kind.as_str()))
        {
            return Err(AppError::validation(
                "outbound_number_types",
                format!(
                    "{unknown:?} is not one of {}",
                    crate::phone::NUMBER_TYPES.join(", ")
                ),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for package in &self.credit_packages {
            let valid_id = (1..=40).contains(&package.id.len())
                && package.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid_id || !ids.insert(package.id.as_str()) {
                return Err(AppError::validation(
                    "credit_packages",
                    format!(
                        "package id {:?} must be unique, 1-40 of a-z 0-9 - _",
                        package.id
                    ),
                ));
            }
            let name_len = package.name.trim().chars().count();
            if name_len == 0 || name_len > 80 || package.name.chars().any(char::is_control) {
                return Err(AppError::validation(
                    "credit_packages",
                    format!("package {} needs a name of 1-80 characters", package.id),
                ));
            }
            if !(1..=MAX_PACKAGE_CREDITS).contains(&package.credits) {
                return Err(AppError::validation(
                    "credit_packages",
                    format!(
                        "package {} must hold 1 to {MAX_PACKAGE_CREDITS} credits",
                        package.id
                    ),
                ));
            }
            let price = self.price_of(package);
            if !(MIN_PACKAGE_PRICE..=MAX_PACKAGE_PRICE).contains(&price) {
                return Err(AppError::validation(
                    "credit_packages",
                    format!(
                        "package {} costs {price}; it must cost {MIN_PACKAGE_PRICE} to {MAX_PACKAGE_PRICE} minor units",
                        package.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The package's price in minor units.
    pub fn price_of(&self, package: &PackageSetting) -> i64 {
        package
            .price
            .unwrap_or_else(|| package.credits.saturating_mul(self.price_per_credit))
    }
}

fn is_region(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && code.parse::<phonenumber::country::Id>().is_ok()
}

/// Reads the stored settings over the defaults (see [`Settings::defaults`]).
pub async fn load(client: &impl GenericClient, config: &Config) -> AppResult<Settings> {
    let rows = client.cached_query(sql::STORED, &[]).await?;
    let mut document = serde_json::to_value(Settings::defaults(config))
        .map_err(|e| AppError::internal(format!("settings do not serialize: {e}")))?;
    if let Value::Object(fields) = &mut document {
        for row in &rows {
            let key: String = row.try_get("key")?;
            if fields.contains_key(&key) {
                fields.insert(key, row.try_get("value")?);
            }
        }
    }
    serde_json::from_value(document)
        .map_err(|e| AppError::internal(format!("stored settings do not parse: {e}")))
}

/// Validates `changes` (a JSON object of setting names to new values) against the current
/// settings and stores the keys that changed, in the caller's transaction. Returns the new
/// settings and the names of the keys that changed.
pub async fn update(
    tx: &impl GenericClient,
    config: &Config,
    changes: &Value,
    by: Option<TenantId>,
) -> AppResult<(Settings, Vec<String>)> {
    let Value::Object(changes) = changes else {
        return Err(AppError::validation(
            "body",
            "must be an object of setting names to values",
        ));
    };
    // Serialized writers: two admins' partial updates cannot interleave into an invalid whole.
    tx.cached_execute(sql::LOCK_FOR_WRITE, &[]).await?;
    let current = load(tx, config).await?;
    let mut document = serde_json::to_value(&current)
        .map_err(|e| AppError::internal(format!("settings do not serialize: {e}")))?;
    let fields = document
        .as_object_mut()
        .ok_or_else(|| AppError::internal("settings are not an object"))?;
    for (key, value) in changes {
        if !fields.contains_key(key) {
            return Err(AppError::validation(key, "is not a known setting"));
        }
        fields.insert(key.clone(), value.clone());
    }
    let updated: Settings = serde_json::from_value(document.clone())
        .map_err(|e| AppError::validation("body", e.to_string()))?;
    updated.validate()?;
    let mut changed = Vec::new();
    let before = serde_json::to_value(&current)
        .map_err(|e| AppError::internal(format!("settings do not serialize: {e}")))?;
    for key in changes.keys() {
        if before.get(key) == document.get(key) {
            continue;
        }
        tx.cached_execute(
            sql::UPSERT,
            &[key, &document[key], &by.map(|t| *t.as_uuid())],
        )
        .await?;
        changed.push(key.clone());
    }
    Ok((updated, changed))
}

pub mod sql {
    crate::db::statements! {
        pub const STORED = "SELECT key, value FROM settings";
        pub const LOCK_FOR_WRITE = "LOCK TABLE settings IN SHARE ROW EXCLUSIVE MODE";
        pub const UPSERT = "INSERT INTO settings (key, value, updated_by) VALUES ($1, $2, $3)
            ON CONFLICT (key) DO UPDATE
            SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_priced() {
        let settings = Settings::default();
        settings.validate().expect("defaults validate");
        let starter = &settings.credit_packages[0];
        assert_eq!(settings.price_of(starter), 1_000);
        assert_eq!(settings.price_of(&settings.credit_packages[1]), 4_500);
    }

    #[test]
    fn bad_values_are_refused() {
        let with = |change: &dyn Fn(&mut Settings)| {
            let mut settings = Settings::default();
            change(&mut settings);
            settings.validate()
        };
        assert!(with(&|s| s.credit_packages.clear()).is_err());
        assert!(with(&|s| s.price_per_credit = 0).is_err());
        assert!(with(&|s| s.currency = "USD".into()).is_err());
        assert!(with(&|s| s.currency = "usdx".into()).is_err());
        assert!(with(&|s| s.currency = "abc".into()).is_err());
        assert!(with(&|s| s.currency = "kwd".into()).is_err());
        assert!(with(&|s| s.currency = "eur".into()).is_ok());
        assert!(with(&|s| s.low_credit_threshold = -1).is_err());
        assert!(with(&|s| s.credit_packages[1].id = "starter".into()).is_err());
        assert!(with(&|s| s.credit_packages[0].id = "Bad Id".into()).is_err());
        assert!(with(&|s| s.credit_packages[0].name = " ".into()).is_err());
        assert!(with(&|s| s.credit_packages[0].name = "a\u{0}b".into()).is_err());
        assert!(with(&|s| s.credit_packages[0].credits = 0).is_err());
        // 4 credits at 10 cents is below Stripe's minimum charge.
        assert!(with(&|s| s.credit_packages[0].credits = 4).is_err());
        assert!(with(&|s| s.credit_packages[2].price = Some(i64::MAX)).is_err());
        assert!(with(&|s| s.lead_warm_threshold = 70).is_err());
        assert!(with(&|s| s.default_phone_region = "XX".into()).is_err());
        assert!(with(&|s| s.default_phone_region = "gb".into()).is_err());
        assert!(with(&|s| s.default_phone_region = "GB".into()).is_ok());
        assert!(with(&|s| s.outbound_countries = vec!["US".into(), "gb".into()]).is_err());
        assert!(with(&|s| s.outbound_countries = vec!["US".into(), "GB".into()]).is_ok());
        assert!(with(&|s| s.outbound_number_types = vec!["premium".into()]).is_err());
        assert!(with(&|s| s.outbound_number_types = vec!["premium_rate".into()]).is_ok());
        assert!(with(&|s| s.contact_import_max_rows = 0).is_err());
        assert!(with(&|s| s.min_call_balance = -1).is_err());
    }
}
