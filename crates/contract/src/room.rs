//! A show's on-sale time and waiting room as an operator sets them: when the show is
//! created (`POST /admin/events`) or later (`PATCH /admin/events/{id}`). One parser for
//! both, so the two requests accept and refuse the same values.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::Millis;

/// The largest fixed rate an operator may set, visitors a minute.
pub const MAX_RATE_PER_MINUTE: i64 = 1_000_000;

/// `waitingRoom` in a request: what is sent changes, the rest stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomSwitch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// A number of visitors a minute, or `"auto"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<Value>,
}

/// How fast a room lets visitors through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoomRate {
    PerMinute(u32),
    /// Adapted to what the order module can settle in time.
    Auto,
}

/// A show's on-sale time and room as they are to be (the waiting room's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomPlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_sale_at: Option<Millis>,
    pub enabled: bool,
    pub rate: RoomRate,
}

impl Default for RoomPlan {
    fn default() -> Self {
        RoomPlan { on_sale_at: None, enabled: false, rate: RoomRate::Auto }
    }
}

/// A field that may be absent (unchanged) or `null` (cleared): `Some(Value::Null)` for null.
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `onSaleAt`: an RFC 3339 time, or `null` for none.
pub fn parse_on_sale(value: &Value) -> Result<Option<Millis>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| "onSaleAt must be an RFC 3339 time, such as 2026-12-07T10:00:00Z".to_owned()),
        _ => Err("onSaleAt must be an RFC 3339 time or null".to_owned()),
    }
}

/// `ratePerMinute`: 1 to [`MAX_RATE_PER_MINUTE`], or `"auto"`.
pub fn parse_rate(value: &Value) -> Result<RoomRate, String> {
    match value {
        Value::String(s) if s == "auto" => Ok(RoomRate::Auto),
        Value::Number(n) => match n.as_i64() {
            Some(r @ 1..=MAX_RATE_PER_MINUTE) => Ok(RoomRate::PerMinute(r as u32)),
            _ => Err(format!("ratePerMinute must be from 1 to {MAX_RATE_PER_MINUTE}, or \"auto\"")),
        },
        _ => Err("ratePerMinute must be a number of visitors a minute, or \"auto\"".to_owned()),
    }
}

impl RoomPlan {
    /// `plan` with what a request sends changed: `on_sale_at` absent leaves the time,
    /// `null` clears it.
    pub fn changed(mut self, on_sale_at: Option<&Value>, switch: Option<&RoomSwitch>) -> Result<RoomPlan, String> {
        if let Some(at) = on_sale_at {
            self.on_sale_at = parse_on_sale(at)?;
        }
        if let Some(switch) = switch {
            if let Some(enabled) = switch.enabled {
                self.enabled = enabled;
            }
            if let Some(rate) = &switch.rate_per_minute {
                self.rate = parse_rate(rate)?;
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_request_changes_what_it_sends_and_refuses_bad_values() {
        let switch = RoomSwitch { enabled: Some(true), rate_per_minute: Some(json!(120)) };
        let plan = RoomPlan::default().changed(Some(&json!("2026-12-07T10:00:00Z")), Some(&switch)).unwrap();
        assert_eq!(
            plan,
            RoomPlan { on_sale_at: Some(1_796_637_600_000), enabled: true, rate: RoomRate::PerMinute(120) }
        );
        let cleared = plan.changed(Some(&Value::Null), None).unwrap();
        assert_eq!(cleared.on_sale_at, None);
        assert_eq!(cleared.rate, RoomRate::PerMinute(120));
        assert!(plan.changed(Some(&json!("tomorrow")), None).is_err());
        assert!(plan.changed(Some(&json!(5)), None).is_err());
        for bad in [json!(0), json!(-1), json!(1_000_001), json!(1.5), json!("fast"), json!(null)] {
            let switch = RoomSwitch { enabled: None, rate_per_minute: Some(bad.clone()) };
            assert!(plan.changed(None, Some(&switch)).is_err(), "{bad}");
        }
        let auto = RoomSwitch { enabled: None, rate_per_minute: Some(json!("auto")) };
        assert_eq!(plan.changed(None, Some(&auto)).unwrap().rate, RoomRate::Auto);
    }
}
