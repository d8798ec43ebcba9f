//! Serde helpers shared by the message types.

use serde::Serializer;

/// The largest integer a JavaScript peer reads exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Writes an integral float as a JSON integer (`50`, not `50.0`), the way
/// JavaScript peers write numbers, so parsed messages re-serialize unchanged.
pub(crate) fn compact_f64<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
        // Exact: the value is integral and within ±2^53.
        #[allow(clippy::cast_possible_truncation)]
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// [`compact_f64`] for optional fields.
pub(crate) fn compact_opt_f64<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => compact_f64(v, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Probe {
        #[serde(serialize_with = "super::compact_f64")]
        n: f64,
    }

    fn json(n: f64) -> String {
        serde_json::to_string(&Probe { n }).unwrap()
    }

    #[test]
    fn integral_floats_are_written_as_integers() {
        assert_eq!(json(50.0), r#"{"n":50}"#);
        assert_eq!(json(-3.0), r#"{"n":-3}"#);
        assert_eq!(json(0.5), r#"{"n":0.5}"#);
        assert_eq!(json(1e300), r#"{"n":1e+300}"#);
    }
}
