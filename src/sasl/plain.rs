//! SASL PLAIN (RFC 4616): one message, `authzid NUL authcid NUL password`.
//!
//! The fleet never stores passwords, so a PLAIN login is checked against the user's SCRAM
//! verifiers (see `scram::password_matches`). As Kafka's PLAIN server, an authorization
//! id other than empty or the user's own is refused: a client may not act for another.

/// A parsed PLAIN message.
#[derive(Debug, PartialEq, Eq)]
pub struct PlainLogin<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

pub fn parse(message: &[u8]) -> Result<PlainLogin<'_>, &'static str> {
    let text = std::str::from_utf8(message).map_err(|_| "PLAIN message is not UTF-8")?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("PLAIN message must be authzid NUL user NUL password");
    };
    if user.is_empty() || password.is_empty() {
        return Err("PLAIN user and password must not be empty");
    }
    if !authzid.is_empty() && authzid != user {
        return Err("PLAIN authorization id must be empty or the user's own");
    }
    Ok(PlainLogin { user, password })
}

/// The user a PLAIN message names, whatever its password: what a passthrough proxy
/// learns as the principal once the broker accepts the login.
pub fn user_of(message: &[u8]) -> Option<&str> {
    parse(message).ok().map(|login| login.user)
}

/// The message a client sends.
pub fn message(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_clients_send_and_refuses_the_rest() {
        assert_eq!(
            parse(b"\0alice\0pw"),
            Ok(PlainLogin {
                user: "alice",
                password: "pw"
            })
        );
        assert!(parse(b"alice\0alice\0pw").is_ok());
        assert_eq!(parse(&message("bob", "x")).unwrap().user, "bob");
        for bad in [
            &b"bob\0alice\0pw"[..],
            b"\0alice",
            b"\0\0pw",
            b"\0a\0b\0c",
            b"\0a\0",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
