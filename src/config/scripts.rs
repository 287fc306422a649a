//! Script directives other than WSGIScriptAlias: WSGIImportScript (preload
//! at process start) and the hook scripts (dispatch, access, auth, handler).

use std::collections::HashSet;

use super::error::{ConfigError, msg};
use super::group::{GroupSpec, parse_group_spec};
use super::tokenize::split_option;

/// `WSGIImportScript path process-group=... application-group=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportScript {
    pub path: String,
    /// Global or Named: the script is loaded when that group's process starts.
    pub process_group: GroupSpec,
    /// Global or Named: the interpreter it is loaded into.
    pub application_group: GroupSpec,
}

/// A hook script: WSGIDispatchScript, WSGIAccessScript, WSGIAuthUserScript,
/// WSGIAuthGroupScript, or one WSGIHandlerScript entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    pub path: String,
    pub process_group: Option<GroupSpec>,
    pub application_group: Option<GroupSpec>,
    pub pass_authorization: Option<bool>,
    /// WSGIHandlerScript's interface= (the others are always WSGI).
    pub interface: super::values::Interface,
}

/// Splits `path option=value...`, checking each option against `allowed` and
/// handing it to `each`. `definition` is C's wording ("import script").
fn parse_options(
    args: &[String],
    definition: &'static str,
    missing: &'static str,
    allowed: &[&'static str],
    mut each: impl FnMut(&'static str, &str) -> Result<(), ConfigError>,
) -> Result<String, ConfigError> {
    let path = match args.first() {
        Some(p) if !p.is_empty() => p.clone(),
        _ => return Err(ConfigError::Fixed(missing)),
    };
    let mut seen = HashSet::new();
    for word in &args[1..] {
        let invalid = || ConfigError::InvalidOption { definition, option: Some(word.clone()) };
        let (name, value) = split_option(word).ok_or_else(invalid)?;
        let name = allowed.iter().copied().find(|a| *a == name).ok_or_else(invalid)?;
        if !seen.insert(name) {
            return Err(ConfigError::DuplicateOption { definition, option: name.to_string() });
        }
        each(name, value)?;
    }
    Ok(path)
}

fn literal(option: &str, spec: GroupSpec) -> Result<GroupSpec, ConfigError> {
    if spec.is_literal() {
        return Ok(spec);
    }
    // C takes the text literally here, so %{RESOURCE} would name an
    // interpreter no request ever uses.
    Err(ConfigError::BadGroup {
        directive: format!("WSGIImportScript {option}"),
        value: spec.to_string(),
        problem: "must be %{GLOBAL} or a name, not",
    })
}

/// Parses WSGIImportScript's words. Whether a named process group exists is
/// checked by the caller, which knows the daemon groups defined so far.
pub fn parse_import_script(args: &[String]) -> Result<ImportScript, ConfigError> {
    let mut process_group = None;
    let mut application_group = None;
    let path = parse_options(
        args,
        "import script",
        msg::IMPORT_SCRIPT_MISSING,
        &["application-group", "process-group"],
        |name, value| {
            let spec = parse_group_spec(name, value)?;
            if name == "process-group" {
                process_group = Some(spec);
            } else {
                application_group = Some(spec);
            }
            Ok(())
        },
    )?;
    // C asks for the application group first.
    let application_group = application_group.ok_or(ConfigError::Fixed(msg::APPLICATION_GROUP_REQUIRED))?;
    let process_group = process_group.ok_or(ConfigError::Fixed(msg::PROCESS_GROUP_REQUIRED))?;
    Ok(ImportScript {
        path,
        process_group: literal("process-group", process_group)?,
        application_group: literal("application-group", application_group)?,
    })
}

fn authorization_flag(value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("On") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("Off") {
        Ok(false)
    } else {
        Err(ConfigError::Fixed(msg::AUTHORIZATION_FLAG))
    }
}

/// Parses the words of a script directive taking only `application-group=`
/// (dispatch, access, auth user, auth group). C expands these groups with
/// %{GLOBAL}, %{SERVER} and %{HOST} only.
pub fn parse_hook_script(directive: &'static str, args: &[String]) -> Result<ScriptFile, ConfigError> {
    let (definition, missing) = match directive {
        "WSGIDispatchScript" => ("dispatch script", "Location of dispatch script not supplied."),
        "WSGIAccessScript" => ("access script", "Location of access script not supplied."),
        "WSGIAuthUserScript" => ("auth user script", "Location of auth user script not supplied."),
        _ => ("auth group script", "Location of auth group script not supplied."),
    };
    let mut application_group = None;
    let path = parse_options(args, definition, missing, &["application-group"], |name, value| {
        let spec = parse_group_spec(name, value)?;
        if matches!(spec, GroupSpec::Resource | GroupSpec::Env(_)) {
            return Err(ConfigError::BadGroup {
                directive: format!("{directive} application-group"),
                value: spec.to_string(),
                problem: "takes %{GLOBAL}, %{SERVER}, %{HOST} or a name, not",
            });
        }
        application_group = Some(spec);
        Ok(())
    })?;
    Ok(ScriptFile { path, process_group: None, application_group, pass_authorization: None, interface: Default::default() })
}

/// Parses `WSGIHandlerScript name path [options]`.
pub fn parse_handler_script(args: &[String]) -> Result<(String, ScriptFile), ConfigError> {
    let name = match args.first() {
        Some(n) if !n.is_empty() => n.clone(),
        _ => return Err(ConfigError::Fixed("Name for handler script not supplied.")),
    };
    let mut script = ScriptFile { path: String::new(), process_group: None, application_group: None, pass_authorization: None, interface: Default::default() };
    script.path = parse_options(
        &args[1..],
        "handler script",
        "Location of handler script not supplied.",
        &["process-group", "application-group", "pass-authorization", "interface"],
        |option, value| {
            match option {
                "process-group" => script.process_group = Some(parse_group_spec(option, value)?),
                "interface" => script.interface = super::values::Interface::parse(value)?,
                "application-group" => script.application_group = Some(parse_group_spec(option, value)?),
                _ => {
                    script.pass_authorization = Some(authorization_flag(value)?);
                }
            }
            Ok(())
        },
    )?;
    Ok((name, script))
}

pub(crate) fn parse_pass_authorization(value: &str) -> Result<bool, ConfigError> {
    authorization_flag(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        super::super::tokenize::tokenize(s).unwrap()
    }

    #[test]
    fn import_script() {
        let s = parse_import_script(&words("/srv/app.wsgi process-group=site application-group=%{GLOBAL}")).unwrap();
        assert_eq!(s.path, "/srv/app.wsgi");
        assert_eq!(s.process_group, GroupSpec::Named("site".into()));
        assert_eq!(s.application_group, GroupSpec::Global);
        let s = parse_import_script(&words("'/a b.py' application-group=x process-group=%{GLOBAL}")).unwrap();
        assert_eq!(s.path, "/a b.py");
        assert_eq!(s.process_group, GroupSpec::Global);
    }

    #[test]
    fn import_script_errors() {
        let e = |s: &str| parse_import_script(&words(s)).unwrap_err().to_string();
        assert_eq!(e(""), "Location of import script not supplied.");
        assert_eq!(e("/x.py"), "Name of WSGI application group required.");
        assert_eq!(e("/x.py process-group=%{GLOBAL}"), "Name of WSGI application group required.");
        assert_eq!(e("/x.py application-group=%{GLOBAL}"), "Name of WSGI process group required.");
        assert_eq!(e("/x.py process-group= application-group=a"), "Invalid name for WSGI process group.");
        assert_eq!(e("/x.py application-group="), "Invalid name for WSGI application group.");
        assert_eq!(e("/x.py x=y"), "Invalid option to WSGI import script definition: 'x=y'.");
        assert_eq!(e("/x.py callable-object=a"), "Invalid option to WSGI import script definition: 'callable-object=a'.");
        assert_eq!(
            e("/x.py application-group=a application-group=b process-group=%{GLOBAL}"),
            "Invalid option to WSGI import script definition: 'application-group' given more than once."
        );
        assert_eq!(
            e("/x.py process-group=%{GLOBAL} application-group=%{RESOURCE}"),
            "WSGIImportScript application-group: must be %{GLOBAL} or a name, not '%{RESOURCE}'."
        );
        assert!(e("/x.py process-group=%{ENV:X} application-group=a").starts_with("WSGIImportScript process-group"));
    }

    #[test]
    fn hook_scripts() {
        let s = parse_hook_script("WSGIAccessScript", &words("/a.py application-group=%{SERVER}")).unwrap();
        assert_eq!(s.path, "/a.py");
        assert_eq!(s.application_group, Some(GroupSpec::Server));
        let s = parse_hook_script("WSGIDispatchScript", &words("/d.py")).unwrap();
        assert_eq!(s.application_group, None);
    }

    #[test]
    fn hook_script_errors() {
        let e = |d, s: &str| parse_hook_script(d, &words(s)).unwrap_err().to_string();
        assert_eq!(e("WSGIAccessScript", ""), "Location of access script not supplied.");
        assert_eq!(e("WSGIAuthUserScript", ""), "Location of auth user script not supplied.");
        assert_eq!(e("WSGIAuthGroupScript", ""), "Location of auth group script not supplied.");
        assert_eq!(e("WSGIDispatchScript", ""), "Location of dispatch script not supplied.");
        assert_eq!(
            e("WSGIDispatchScript", "/x process-group=a"),
            "Invalid option to WSGI dispatch script definition: 'process-group=a'."
        );
        assert_eq!(e("WSGIAccessScript", "/x bogus=1"), "Invalid option to WSGI access script definition: 'bogus=1'.");
        assert_eq!(e("WSGIAccessScript", "/x application-group="), "Invalid name for WSGI application group.");
        assert!(e("WSGIAuthUserScript", "/x application-group=%{RESOURCE}").contains("takes %{GLOBAL}"));
    }

    #[test]
    fn handler_script() {
        let (name, s) =
            parse_handler_script(&words("my-handler /h.py process-group=%{GLOBAL} application-group=a pass-authorization=On"))
                .unwrap();
        assert_eq!(name, "my-handler");
        assert_eq!(s.path, "/h.py");
        assert_eq!(s.process_group, Some(GroupSpec::Global));
        assert_eq!(s.application_group, Some(GroupSpec::Named("a".into())));
        assert_eq!(s.pass_authorization, Some(true));
        let e = |s: &str| parse_handler_script(&words(s)).unwrap_err().to_string();
        assert_eq!(e(""), "Name for handler script not supplied.");
        assert_eq!(e("h"), "Location of handler script not supplied.");
        assert_eq!(e("h /h.py pass-authorization=maybe"), "Invalid value for authorization flag.");
        assert_eq!(e("h /h.py pass-authorization="), "Invalid value for authorization flag.");
        assert_eq!(e("h /h.py callable-object=x"), "Invalid option to WSGI handler script definition: 'callable-object=x'.");
    }
}
