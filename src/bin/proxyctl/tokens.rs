//! `proxyctl token`: the admin API's bearer tokens kept by the fleet. A new token is
//! printed once; the fleet keeps only its hash.

use clap::{Subcommand, ValueEnum};
use flotilla::api::{CreatedToken, NewToken, TokenDeleted, TokenSource, TokenSummary};

use crate::client::{encoded, Api};
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it, once.
    Add {
        name: String,
        #[arg(long, value_enum)]
        scope: Scope,
    },
    /// Delete a token of the fleet (tokens of a node's configuration stay).
    Delete { name: String },
    /// Token names, scopes and where they are defined.
    List,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// GET only.
    Read,
    /// Everything.
    Admin,
}

pub fn run(api: &Api, command: &TokenCommand, output: Output) -> Result<String, String> {
    match command {
        TokenCommand::Add { name, scope } => {
            let scope = match scope {
                Scope::Read => "read",
                Scope::Admin => "admin",
            };
            let new = NewToken {
                name: name.clone(),
                scope: scope.into(),
            };
            let created: CreatedToken = api.post("/api/v1/tokens", Some(&new))?;
            Ok(match output {
                Output::Json => json(&created),
                Output::Table => format!(
                    "token {} ({} scope); it is shown only now, keep it safe:\n{}\n",
                    created.name, created.scope, created.token
                ),
            })
        }
        TokenCommand::Delete { name } => {
            let deleted: TokenDeleted = api.delete(&format!("/api/v1/tokens/{}", encoded(name)))?;
            Ok(match output {
                Output::Json => json(&deleted),
                Output::Table => format!("token {} deleted\n", deleted.deleted),
            })
        }
        TokenCommand::List => {
            let tokens: Vec<TokenSummary> = api.get("/api/v1/tokens")?;
            Ok(match output {
                Output::Json => json(&tokens),
                Output::Table => token_table(&tokens),
            })
        }
    }
}

fn token_table(tokens: &[TokenSummary]) -> String {
    let rows = tokens.iter().map(|t| {
        let source = match t.source {
            TokenSource::Fleet => "fleet",
            TokenSource::Config => "node config",
        };
        vec![t.name.clone(), t.scope.clone(), source.into()]
    });
    table(&["TOKEN", "SCOPE", "DEFINED IN"], rows.collect())
}
