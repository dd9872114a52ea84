//! `proxyctl user`: the fleet's SASL/SCRAM users. A password is sent to the node, which
//! derives the verifiers; `--password-stdin` keeps it out of the shell history and the
//! process list.

use clap::Subcommand;
use flotilla::api::{NewUser, UserDeleted, UserSaved, UserSummary};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user's credential for one mechanism, or replace its password.
    Add {
        name: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        #[arg(
            long,
            conflicts_with = "password_stdin",
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// PBKDF2 iterations, 4096 to 16384.
        #[arg(long)]
        iterations: Option<u32>,
    },
    /// Delete a user's credential for one mechanism, or the whole user.
    Delete {
        name: String,
        #[arg(long)]
        mechanism: Option<String>,
    },
    /// Users and the mechanisms they have credentials for.
    List,
}

pub fn run(api: &Api, command: &UserCommand, output: Output) -> Result<String, String> {
    match command {
        UserCommand::Add {
            name,
            mechanism,
            password,
            password_stdin,
            iterations,
        } => {
            let password = match (password, password_stdin) {
                (Some(p), _) => p.clone(),
                (None, _) => read_password()?,
            };
            let new = NewUser {
                name: name.clone(),
                mechanism: mechanism.clone(),
                password,
                iterations: *iterations,
            };
            let saved: UserSaved = api.post("/api/v1/users", Some(&new))?;
            Ok(match output {
                Output::Json => json(&saved),
                Output::Table => format!(
                    "user {} has a {} credential ({} iterations)\n",
                    saved.name, saved.mechanism, saved.iterations
                ),
            })
        }
        UserCommand::Delete { name, mechanism } => {
            let mut path = format!("/api/v1/users/{}", encoded(name));
            if let Some(m) = mechanism {
                path += &format!("?mechanism={}", encoded(m));
            }
            let deleted: UserDeleted = api.delete(&path)?;
            Ok(match (output, &deleted.mechanism) {
                (Output::Json, _) => json(&deleted),
                (Output::Table, Some(m)) => format!("user {name}: {m} credential deleted\n"),
                (Output::Table, None) => format!("user {name} deleted\n"),
            })
        }
        UserCommand::List => {
            let users: Vec<UserSummary> = api.get("/api/v1/users")?;
            Ok(match output {
                Output::Json => json(&users),
                Output::Table => user_table(&users),
            })
        }
    }
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(password)
}

fn user_table(users: &[UserSummary]) -> String {
    let rows = users.iter().map(|u| {
        let credentials: Vec<String> = u
            .credentials
            .iter()
            .map(|c| format!("{} ({} iterations)", c.mechanism, c.iterations))
            .collect();
        vec![u.name.clone(), credentials.join(", ")]
    });
    table(&["USER", "CREDENTIALS"], rows.collect())
}
