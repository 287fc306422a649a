//! Small value types shared by several directives.

use super::error::ConfigError;

/// Parses an On/Off directive argument (case-insensitive, as C's strcasecmp).
pub fn parse_flag(directive: &'static str, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("On") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("Off") {
        Ok(false)
    } else {
        Err(ConfigError::Flag { directive, choices: "Off | On" })
    }
}

/// WSGIMapHEADToGET: whether a HEAD request is shown to the application as GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapHeadToGet {
    On,
    Off,
    /// Only when an output filter that might need the body is present.
    #[default]
    Auto,
}

impl MapHeadToGet {
    pub fn parse(directive: &'static str, value: &str) -> Result<Self, ConfigError> {
        if value.eq_ignore_ascii_case("On") {
            Ok(MapHeadToGet::On)
        } else if value.eq_ignore_ascii_case("Off") {
            Ok(MapHeadToGet::Off)
        } else if value.eq_ignore_ascii_case("Auto") {
            Ok(MapHeadToGet::Auto)
        } else {
            Err(ConfigError::Flag { directive, choices: "Off | On | Auto" })
        }
    }
}

/// interface= of WSGIScriptAlias(Match) and WSGIHandlerScript: which
/// protocol the script's callable speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    /// ASGI when the callable is a coroutine function (or its `__call__` is one), else WSGI.
    #[default]
    Auto,
    Wsgi,
    Asgi,
}

impl Interface {
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        match value {
            "auto" => Ok(Interface::Auto),
            "wsgi" => Ok(Interface::Wsgi),
            "asgi" => Ok(Interface::Asgi),
            _ => Err(ConfigError::Fixed("Invalid value for interface, must be one of: auto | wsgi | asgi.")),
        }
    }

    /// Its code in a daemon request head.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        [Interface::Auto, Interface::Wsgi, Interface::Asgi].into_iter().find(|i| *i as u8 == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_case_insensitive() {
        assert_eq!(parse_flag("WSGIRestrictStdout", "On"), Ok(true));
        assert_eq!(parse_flag("WSGIRestrictStdout", "oN"), Ok(true));
        assert_eq!(parse_flag("WSGIRestrictStdout", "OFF"), Ok(false));
    }

    #[test]
    fn bad_flag_message() {
        let e = parse_flag("WSGIRestrictStdout", "maybe").unwrap_err();
        assert_eq!(e.to_string(), "WSGIRestrictStdout must be one of: Off | On");
        assert!(parse_flag("WSGIRestrictStdout", "1").is_err());
        assert!(parse_flag("WSGIRestrictStdout", "").is_err());
    }

    #[test]
    fn map_head_to_get() {
        let d = "WSGIMapHEADToGET";
        assert_eq!(MapHeadToGet::parse(d, "on"), Ok(MapHeadToGet::On));
        assert_eq!(MapHeadToGet::parse(d, "Off"), Ok(MapHeadToGet::Off));
        assert_eq!(MapHeadToGet::parse(d, "AUTO"), Ok(MapHeadToGet::Auto));
        assert_eq!(MapHeadToGet::default(), MapHeadToGet::Auto);
        let e = MapHeadToGet::parse(d, "x").unwrap_err();
        assert_eq!(e.to_string(), "WSGIMapHEADToGET must be one of: Off | On | Auto");
    }

    #[test]
    fn interface() {
        assert_eq!(Interface::parse("auto"), Ok(Interface::Auto));
        assert_eq!(Interface::parse("wsgi"), Ok(Interface::Wsgi));
        assert_eq!(Interface::parse("asgi"), Ok(Interface::Asgi));
        assert!(Interface::parse("ASGI3").is_err());
        for i in [Interface::Auto, Interface::Wsgi, Interface::Asgi] {
            assert_eq!(Interface::from_code(i.code()), Some(i));
        }
        assert_eq!(Interface::from_code(9), None);
    }
}
