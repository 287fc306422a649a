//! The one error type of the configuration layer.
//!
//! Display is exactly what httpd prints after "Syntax error on line N of FILE:".
//! Where C mod_wsgi 4.9.4 (or httpd itself) has a message, the text is the
//! same; where C silently accepts something clearly wrong, the message keeps
//! the C sentence as a prefix (so it still greps) and adds what was wrong.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// httpd's TAKE1 arity message.
    #[error("{directive} takes one argument, {usage}")]
    TakesOne { directive: &'static str, usage: &'static str },

    /// The C module's own arity message for WSGIScriptAlias(Match).
    #[error("{directive} requires at least two arguments, {usage}")]
    TwoOrMore { directive: &'static str, usage: &'static str },

    /// httpd's GLOBAL_ONLY message.
    #[error("{0} cannot occur within <VirtualHost> section")]
    NotInVirtualHost(&'static str),

    /// httpd's message for a directive used outside its context.
    #[error("{0} not allowed here")]
    NotAllowedHere(&'static str),

    #[error(
        "Invalid command '{0}', perhaps misspelled or defined by a module not included in the server configuration"
    )]
    UnknownDirective(String),

    /// An On/Off (or On/Off/Auto) directive given something else.
    #[error("{directive} must be one of: {choices}")]
    Flag { directive: &'static str, choices: &'static str },

    /// An argument that is not `name=value`, or a name the directive does not know.
    #[error("Invalid option to WSGI {definition} definition{}", detail(.option))]
    InvalidOption { definition: &'static str, option: Option<String> },

    /// C lets the last of repeated options win; a repeat is almost always a mistake.
    #[error("Invalid option to WSGI {definition} definition: '{option}' given more than once.")]
    DuplicateOption { definition: &'static str, option: String },

    /// A WSGIDaemonProcess option with a bad value. `what` is the C wording
    /// ("thread count"); `problem` is set where C would have accepted the value.
    #[error("Invalid {what} for WSGI daemon process{}", problem_text(.option, .value, .problem))]
    InvalidValue {
        what: &'static str,
        option: &'static str,
        value: String,
        problem: Option<&'static str>,
    },

    /// httpd's ap_uname2id/ap_gname2id exit the server with "bad user name X";
    /// here it is an ordinary syntax error naming the option.
    #[error("Invalid {kind} for WSGI daemon process: bad {kind} name {name} ({option}=).")]
    UnknownIdentity { kind: &'static str, option: &'static str, name: String },

    #[error("Unterminated {quote} quote in arguments: {raw}")]
    UnterminatedQuote { quote: char, raw: String },

    /// A `%{...}` group token the directive cannot use.
    #[error("{directive}: {problem} '{value}'.")]
    BadGroup { directive: String, value: String, problem: &'static str },

    /// A literal WSGIProcessGroup / process-group= naming no WSGIDaemonProcess,
    /// found after the whole configuration was read (C reports it per request).
    #[error("No WSGI daemon process called '{group}' has been configured ({directive}).")]
    UnknownProcessGroup { directive: &'static str, group: String },

    /// A fixed message of the C module, verbatim.
    #[error("{0}")]
    Fixed(&'static str),

    /// Any other message built at run time (values quoted inside).
    #[error("{0}")]
    Other(String),
}

fn detail(option: &Option<String>) -> String {
    match option {
        Some(o) => format!(": '{o}'."),
        None => ".".to_string(),
    }
}

fn problem_text(option: &str, value: &str, problem: &Option<&'static str>) -> String {
    match problem {
        Some(p) => format!(": {option}={value} {p}."),
        None => ".".to_string(),
    }
}

// Messages the C module prints verbatim, collected so tests and callers share them.
pub(crate) mod msg {
    pub const DAEMON_NAME_MISSING: &str = "Name of WSGI daemon process not supplied.";
    pub const DAEMON_DUPLICATE: &str = "Name duplicates previous WSGI daemon definition.";
    pub const ROOT_BLOCKED: &str = "WSGI process blocked from running as root.";
    pub const GROUP_NOT_CONFIGURED: &str = "WSGI process group not yet configured.";
    pub const GROUP_NOT_ACCESSIBLE: &str = "WSGI process group not accessible.";
    pub const GROUP_NOT_MATCHABLE: &str = "WSGI process group not matchable.";
    pub const PROCESS_GROUP_NAME: &str = "Invalid name for WSGI process group.";
    pub const APPLICATION_GROUP_NAME: &str = "Invalid name for WSGI application group.";
    pub const CALLABLE_OBJECT_NAME: &str = "Invalid name for WSGI callable object.";
    pub const AUTHORIZATION_FLAG: &str = "Invalid value for authorization flag.";
    pub const APPLICATION_GROUP_REQUIRED: &str = "Name of WSGI application group required.";
    pub const PROCESS_GROUP_REQUIRED: &str = "Name of WSGI process group required.";
    pub const IMPORT_SCRIPT_MISSING: &str = "Location of import script not supplied.";
    pub const REGEX: &str = "Regular expression could not be compiled.";
}

impl ConfigError {
    /// The message C gives when an ap_pregcomp of a WSGIScriptAliasMatch
    /// pattern fails; the glue compiles the regex (PCRE) and returns this.
    pub fn regex_compile() -> Self {
        ConfigError::Fixed(msg::REGEX)
    }
}
