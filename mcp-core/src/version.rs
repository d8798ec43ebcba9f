//! Protocol revisions, their eras, and version negotiation.
//!
//! Two eras exist. **Legacy** revisions (2024-11-05 through 2025-11-25) open a
//! session with `initialize`; the **modern** revision (2026-07-28) is stateless:
//! every request names its version in `_meta`.
//!
//! ```
//! use mcp_core::version::{Era, ProtocolVersion};
//!
//! let v: ProtocolVersion = "2025-06-18".parse().unwrap();
//! assert_eq!(v.era(), Era::Legacy);
//! assert_eq!(ProtocolVersion::LATEST.era(), Era::Modern);
//! // An unknown version at `initialize` is answered with the newest legacy one.
//! assert_eq!(ProtocolVersion::negotiate_initialize("1999-01-01"), ProtocolVersion::V2025_11_25);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A protocol revision this crate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// 2024-11-05: the original revision, HTTP+SSE transport.
    V2024_11_05,
    /// 2025-03-26: Streamable HTTP, batching, tool annotations.
    V2025_03_26,
    /// 2025-06-18: structured tool output, elicitation, no batching.
    V2025_06_18,
    /// 2025-11-25: icons, URL elicitation, tasks.
    V2025_11_25,
    /// 2026-07-28: stateless, `server/discover`, multi round-trip requests.
    V2026_07_28,
}

/// Which family of wire behaviour a revision belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// `initialize` handshake and sessions (2025-11-25 and earlier).
    Legacy,
    /// Per-request `_meta`, no sessions (2026-07-28 and later).
    Modern,
}

impl ProtocolVersion {
    /// Every supported revision, oldest first.
    pub const ALL: [ProtocolVersion; 5] =
        [Self::V2024_11_05, Self::V2025_03_26, Self::V2025_06_18, Self::V2025_11_25, Self::V2026_07_28];

    /// The newest revision.
    pub const LATEST: ProtocolVersion = Self::V2026_07_28;

    /// The newest revision that still uses `initialize`.
    pub const LATEST_LEGACY: ProtocolVersion = Self::V2025_11_25;

    /// The version assumed for HTTP requests without `MCP-Protocol-Version`.
    pub const HTTP_DEFAULT: ProtocolVersion = Self::V2025_03_26;

    /// The wire string, such as `"2025-11-25"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// The era this revision belongs to.
    pub const fn era(self) -> Era {
        match self {
            Self::V2026_07_28 => Era::Modern,
            _ => Era::Legacy,
        }
    }

    /// Whether this is a stateless (modern) revision.
    pub const fn is_modern(self) -> bool {
        matches!(self.era(), Era::Modern)
    }

    /// JSON-RPC batches are allowed only in 2025-03-26.
    pub const fn allows_batching(self) -> bool {
        matches!(self, Self::V2025_03_26)
    }

    /// Structured tool output (`outputSchema`, `structuredContent`) exists from 2025-06-18 on.
    pub const fn has_structured_output(self) -> bool {
        matches!(self, Self::V2025_06_18 | Self::V2025_11_25 | Self::V2026_07_28)
    }

    /// The answer to an `initialize` request asking for `requested`: the same
    /// version when it is a supported legacy one, else the newest legacy one.
    pub fn negotiate_initialize(requested: &str) -> ProtocolVersion {
        match requested.parse::<ProtocolVersion>() {
            Ok(v) if v.era() == Era::Legacy => v,
            _ => Self::LATEST_LEGACY,
        }
    }

    /// The wire strings of every supported revision, newest first.
    pub fn supported_strings() -> Vec<String> {
        Self::ALL.iter().rev().map(|v| v.as_str().to_owned()).collect()
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version string is not one this crate supports.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported protocol version {0:?}")]
pub struct UnknownVersion(pub String);

impl FromStr for ProtocolVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownVersion(s.to_owned()))
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_version() {
        for v in ProtocolVersion::ALL {
            assert_eq!(v.as_str().parse::<ProtocolVersion>().unwrap(), v);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<ProtocolVersion>(&json).unwrap(), v);
        }
    }

    #[test]
    fn negotiation_echoes_supported_legacy_versions() {
        assert_eq!(ProtocolVersion::negotiate_initialize("2024-11-05"), ProtocolVersion::V2024_11_05);
        assert_eq!(ProtocolVersion::negotiate_initialize("2025-06-18"), ProtocolVersion::V2025_06_18);
        // initialize is legacy-only: asking for the modern revision gets the newest legacy one.
        assert_eq!(ProtocolVersion::negotiate_initialize("2026-07-28"), ProtocolVersion::V2025_11_25);
        assert_eq!(ProtocolVersion::negotiate_initialize("garbage"), ProtocolVersion::V2025_11_25);
    }

    #[test]
    fn only_2025_03_26_batches() {
        let batching: Vec<_> = ProtocolVersion::ALL.into_iter().filter(|v| v.allows_batching()).collect();
        assert_eq!(batching, [ProtocolVersion::V2025_03_26]);
    }
}
