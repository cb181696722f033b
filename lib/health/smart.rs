//! SMART data as health uses it: the few attributes that predict a failing disk, read
//! from `smartctl --json -a` output (ATA, NVMe and SCSI shapes), and the override file
//! (`--smart-override`) that supplies or replaces them per disk.
//!
//! Owns parsing only: finding the device and running smartctl is `device`'s, judging
//! the values is `rules`'.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The SMART attributes health looks at; `None` when the device does not report one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmartData {
    /// The device's own overall assessment (`smart_status.passed`); false: failing.
    pub passed: Option<bool>,
    /// Reallocated sectors (ATA attribute 5; SCSI grown defect list).
    pub reallocated_sectors: Option<u64>,
    /// Sectors waiting to be remapped after a failed read (ATA attribute 197).
    pub pending_sectors: Option<u64>,
    /// Sectors found unreadable by the offline scan (ATA attribute 198).
    pub offline_uncorrectable: Option<u64>,
    /// Unrecovered data integrity errors (NVMe `media_errors`; SCSI uncorrected
    /// read and write errors).
    pub media_errors: Option<u64>,
    /// Interface CRC errors, usually a cable (ATA attribute 199).
    pub crc_errors: Option<u64>,
    /// Rated endurance used, in percent, may exceed 100 (NVMe `percentage_used`; ATA
    /// 100 less the normalized value of a wear attribute: 177, 231, 233).
    pub percentage_used: Option<u64>,
    /// Current temperature in degrees Celsius.
    pub temperature_celsius: Option<i64>,
    /// NVMe critical warning bits (spare low, temperature, reliability, read-only,
    /// backup failed); nonzero means the controller itself raises an alarm.
    pub critical_warning: Option<u64>,
    /// Power-on hours.
    pub power_on_hours: Option<u64>,
}

impl SmartData {
    /// Every field `other` has replaces this one's.
    pub fn overlay(&mut self, other: &SmartData) {
        fn take<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        take(&mut self.passed, &other.passed);
        take(&mut self.reallocated_sectors, &other.reallocated_sectors);
        take(&mut self.pending_sectors, &other.pending_sectors);
        take(
            &mut self.offline_uncorrectable,
            &other.offline_uncorrectable,
        );
        take(&mut self.media_errors, &other.media_errors);
        take(&mut self.crc_errors, &other.crc_errors);
        take(&mut self.percentage_used, &other.percentage_used);
        take(&mut self.temperature_celsius, &other.temperature_celsius);
        take(&mut self.critical_warning, &other.critical_warning);
        take(&mut self.power_on_hours, &other.power_on_hours);
    }

    /// Whether no attribute is known.
    pub fn is_empty(&self) -> bool {
        *self == SmartData::default()
    }
}

/// ATA attribute ids health reads.
mod ata {
    pub const REALLOCATED: u64 = 5;
    pub const POWER_ON_HOURS: u64 = 9;
    pub const WEAR_LEVELING: u64 = 177;
    pub const TEMPERATURE: u64 = 194;
    pub const PENDING: u64 = 197;
    pub const OFFLINE_UNCORRECTABLE: u64 = 198;
    pub const CRC_ERRORS: u64 = 199;
    pub const SSD_LIFE_LEFT: u64 = 231;
    pub const MEDIA_WEAROUT: u64 = 233;
}

/// The attributes found in the JSON smartctl prints with `--json -a`. Fields that are
/// absent or of another type are left unknown: nothing here fails on odd input.
pub fn parse_smartctl(json: &Value) -> SmartData {
    let u = |v: &Value| v.as_u64();
    let mut data = SmartData {
        passed: json
            .pointer("/smart_status/passed")
            .and_then(Value::as_bool),
        temperature_celsius: json.pointer("/temperature/current").and_then(Value::as_i64),
        power_on_hours: json.pointer("/power_on_time/hours").and_then(u),
        ..SmartData::default()
    };
    if let Some(table) = json
        .pointer("/ata_smart_attributes/table")
        .and_then(Value::as_array)
    {
        for attribute in table {
            let Some(id) = attribute.get("id").and_then(u) else {
                continue;
            };
            let raw = attribute.pointer("/raw/value").and_then(u);
            let normalized = attribute.get("value").and_then(u);
            match id {
                ata::REALLOCATED => data.reallocated_sectors = raw,
                ata::PENDING => data.pending_sectors = raw,
                ata::OFFLINE_UNCORRECTABLE => data.offline_uncorrectable = raw,
                ata::CRC_ERRORS => data.crc_errors = raw,
                // The raw temperature often packs min/max in its upper bytes.
                ata::TEMPERATURE if data.temperature_celsius.is_none() => {
                    data.temperature_celsius = raw.map(|r| (r & 0xff) as i64)
                }
                ata::POWER_ON_HOURS if data.power_on_hours.is_none() => data.power_on_hours = raw,
                ata::WEAR_LEVELING | ata::SSD_LIFE_LEFT | ata::MEDIA_WEAROUT => {
                    // Normalized from 100 (new) down: used = 100 - value.
                    if let Some(value) = normalized.filter(|v| *v <= 100) {
                        let used = 100 - value;
                        data.percentage_used =
                            Some(data.percentage_used.map_or(used, |u| u.max(used)));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(log) = json.get("nvme_smart_health_information_log") {
        data.media_errors = log.get("media_errors").and_then(u);
        data.percentage_used = log
            .get("percentage_used")
            .and_then(u)
            .or(data.percentage_used);
        data.critical_warning = log.get("critical_warning").and_then(u);
        if data.temperature_celsius.is_none() {
            data.temperature_celsius = log.get("temperature").and_then(Value::as_i64);
        }
        if data.power_on_hours.is_none() {
            data.power_on_hours = log.get("power_on_hours").and_then(u);
        }
    }
    if let Some(defects) = json.get("scsi_grown_defect_list").and_then(u) {
        data.reallocated_sectors = Some(defects);
    }
    if let Some(log) = json.get("scsi_error_counter_log") {
        let uncorrected = ["read", "write", "verify"]
            .iter()
            .filter_map(|op| {
                log.pointer(&format!("/{op}/total_uncorrected_errors"))
                    .and_then(u)
            })
            .fold(None, |sum: Option<u64>, n| {
                Some(sum.unwrap_or(0).saturating_add(n))
            });
        if uncorrected.is_some() {
            data.media_errors = uncorrected;
        }
    }
    data
}

/// Whether smartctl's JSON holds SMART data at all (a device it could not open, or one
/// without SMART, gives only its `smartctl` and `device` sections).
pub fn has_smart_sections(json: &Value) -> bool {
    [
        "smart_status",
        "ata_smart_attributes",
        "nvme_smart_health_information_log",
        "scsi_grown_defect_list",
        "scsi_error_counter_log",
    ]
    .iter()
    .any(|key| json.get(key).is_some())
}

/// smartctl's own error messages in its JSON (`smartctl.messages[].string`), joined.
pub fn smartctl_messages(json: &Value) -> Option<String> {
    let messages: Vec<&str> = json
        .pointer("/smartctl/messages")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|m| m.get("string").and_then(Value::as_str))
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

/// One disk's entry of the override file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OverrideEntry {
    /// The values given (they replace smartctl's).
    pub data: SmartData,
    /// smartctl is not run for this disk: the values given are all there is.
    pub replace: bool,
}

/// The override file: entries keyed by disk id (`d0`) or disk path, as written.
///
/// Format (JSON): an object whose keys name disks (an id such as `"d2"`, or the disk's
/// directory as the superblock or `argosfs-disk list` shows it) and whose values are
/// objects with any of the [`SmartData`] fields (`passed`, `reallocated_sectors`,
/// `pending_sectors`, `offline_uncorrectable`, `media_errors`, `crc_errors`,
/// `percentage_used`, `temperature_celsius`, `critical_warning`, `power_on_hours`) and
/// optionally `"replace": true`. Fields given replace what smartctl reports; with
/// `replace`, smartctl is not run for that disk. Unknown fields are refused, so a typo
/// does not pass silently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmartOverride {
    /// Entries by the key they were given under.
    pub entries: BTreeMap<String, OverrideEntry>,
}

impl SmartOverride {
    /// Parses an override file's text; the error says which entry is wrong and why.
    pub fn parse(text: &str) -> Result<SmartOverride, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(disks) = value else {
            return Err("the top level must be an object keyed by disk id or path".into());
        };
        let mut entries = BTreeMap::new();
        for (key, entry) in disks {
            let Value::Object(mut fields) = entry else {
                return Err(format!("{key:?}: must be an object of SMART fields"));
            };
            let replace = match fields.remove("replace") {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(_) => return Err(format!("{key:?}: \"replace\" must be true or false")),
            };
            let data: SmartData = serde_json::from_value(Value::Object(fields))
                .map_err(|e| format!("{key:?}: {e}"))?;
            entries.insert(key, OverrideEntry { data, replace });
        }
        Ok(SmartOverride { entries })
    }

    /// The entry for a disk: by its id (`d3`, or `3`), else by its path as configured or
    /// as resolved against ROOT.
    pub fn entry_for(
        &self,
        id: crate::types::DiskId,
        paths: &[&std::path::Path],
    ) -> Option<&OverrideEntry> {
        self.entries
            .get(&id.to_string())
            .or_else(|| self.entries.get(&id.0.to_string()))
            .or_else(|| {
                paths.iter().find_map(|p| {
                    let text = p.to_string_lossy();
                    self.entries
                        .get(text.as_ref())
                        .or_else(|| self.entries.get(text.trim_end_matches('/')))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DiskId;
    use serde_json::json;
    use std::path::Path;

    /// The shape of `smartctl --json -a /dev/sda` for a SATA disk (fields trimmed).
    fn ata_sample() -> Value {
        json!({
            "json_format_version": [1, 0],
            "smartctl": {"version": [7, 3], "exit_status": 0},
            "device": {"name": "/dev/sda", "type": "sat", "protocol": "ATA"},
            "smart_status": {"passed": true},
            "ata_smart_attributes": {"revision": 16, "table": [
                {"id": 5, "name": "Reallocated_Sector_Ct", "value": 100, "worst": 100, "thresh": 10,
                 "raw": {"value": 3, "string": "3"}},
                {"id": 9, "name": "Power_On_Hours", "value": 95, "raw": {"value": 21000, "string": "21000"}},
                {"id": 177, "name": "Wear_Leveling_Count", "value": 93, "raw": {"value": 120, "string": "120"}},
                {"id": 194, "name": "Temperature_Celsius", "value": 64,
                 "raw": {"value": 193275412516_u64, "string": "36 (Min/Max 18/45)"}},
                {"id": 197, "name": "Current_Pending_Sector", "value": 100, "raw": {"value": 2, "string": "2"}},
                {"id": 198, "name": "Offline_Uncorrectable", "value": 100, "raw": {"value": 1, "string": "1"}},
                {"id": 199, "name": "UDMA_CRC_Error_Count", "value": 200, "raw": {"value": 0, "string": "0"}}
            ]},
            "power_on_time": {"hours": 21000},
            "temperature": {"current": 36}
        })
    }

    /// The shape of `smartctl --json -a /dev/nvme0` (fields trimmed).
    fn nvme_sample() -> Value {
        json!({
            "smartctl": {"version": [7, 4], "exit_status": 0},
            "device": {"name": "/dev/nvme0", "type": "nvme", "protocol": "NVMe"},
            "smart_status": {"passed": false, "nvme": {"value": 4}},
            "nvme_smart_health_information_log": {
                "critical_warning": 4, "temperature": 51, "available_spare": 100,
                "available_spare_threshold": 10, "percentage_used": 7,
                "data_units_read": 1000, "power_on_hours": 5000, "media_errors": 12,
                "num_err_log_entries": 30
            },
            "temperature": {"current": 51},
            "power_on_time": {"hours": 5000}
        })
    }

    #[test]
    fn ata_attributes_are_read_from_the_table() {
        let data = parse_smartctl(&ata_sample());
        assert_eq!(data.passed, Some(true));
        assert_eq!(data.reallocated_sectors, Some(3));
        assert_eq!(data.pending_sectors, Some(2));
        assert_eq!(data.offline_uncorrectable, Some(1));
        assert_eq!(data.crc_errors, Some(0));
        assert_eq!(data.percentage_used, Some(7));
        assert_eq!(data.temperature_celsius, Some(36));
        assert_eq!(data.power_on_hours, Some(21000));
        assert_eq!(data.media_errors, None);
        assert!(has_smart_sections(&ata_sample()));
    }

    #[test]
    fn nvme_health_log_is_read() {
        let data = parse_smartctl(&nvme_sample());
        assert_eq!(data.passed, Some(false));
        assert_eq!(data.media_errors, Some(12));
        assert_eq!(data.percentage_used, Some(7));
        assert_eq!(data.critical_warning, Some(4));
        assert_eq!(data.temperature_celsius, Some(51));
        assert_eq!(data.pending_sectors, None);
    }

    #[test]
    fn odd_input_gives_unknown_fields_not_a_panic() {
        let odd = json!({"smart_status": {"passed": "yes"}, "ata_smart_attributes": {"table": [
            {"id": "five"}, {"name": "x"}, {"id": 5, "raw": {"value": -1}}, 7
        ]}, "temperature": null});
        let data = parse_smartctl(&odd);
        assert!(data.is_empty(), "{data:?}");
        assert!(parse_smartctl(&json!([])).is_empty());
        let failed = json!({"smartctl": {"messages": [
            {"string": "Smartctl open device: /dev/vda failed: Permission denied", "severity": "error"}
        ], "exit_status": 2}});
        assert!(!has_smart_sections(&failed));
        assert!(
            smartctl_messages(&failed)
                .unwrap()
                .contains("Permission denied")
        );
    }

    #[test]
    fn overrides_parse_find_their_disk_and_refuse_typos() {
        let text = r#"{
            "d0": {"pending_sectors": 12},
            "/srv/d1": {"passed": false, "replace": true},
            "2": {"temperature_celsius": 80}
        }"#;
        let o = SmartOverride::parse(text).unwrap();
        let d0 = o.entry_for(DiskId(0), &[]).unwrap();
        assert_eq!(d0.data.pending_sectors, Some(12));
        assert!(!d0.replace);
        let d1 = o.entry_for(DiskId(1), &[Path::new("/srv/d1")]).unwrap();
        assert!(d1.replace);
        assert_eq!(d1.data.passed, Some(false));
        assert!(o.entry_for(DiskId(2), &[]).is_some());
        assert!(o.entry_for(DiskId(3), &[Path::new("/srv/d3")]).is_none());
        let typo = SmartOverride::parse(r#"{"d0": {"pending_sector": 1}}"#).unwrap_err();
        assert!(
            typo.contains("d0") && typo.contains("pending_sector"),
            "{typo}"
        );
        assert!(SmartOverride::parse("[1]").is_err());
        assert!(SmartOverride::parse(r#"{"d0": 5}"#).is_err());
        assert!(SmartOverride::parse("{").is_err());
        let mut merged = parse_smartctl(&ata_sample());
        merged.overlay(&d0.data);
        assert_eq!(merged.pending_sectors, Some(12));
        assert_eq!(merged.reallocated_sectors, Some(3));
    }
}
