//! `proxyctl zone`: the CIDR -> zone map that places clients by source address, for
//! near-source routing. A client's zone can also come from its client id
//! (`flotilla_zone=ZONE`) or the rack it fetches with, which take precedence.

use clap::Subcommand;
use flotilla::api::{ZoneMapping, ZoneMappingRemoved};

use crate::client::Api;
use crate::output::{json, table, Output};

#[derive(Subcommand, Debug)]
pub enum ZoneCommand {
    /// The CIDR -> zone map.
    Map {
        #[command(subcommand)]
        command: MapCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum MapCommand {
    /// Place clients whose address is in CIDR in ZONE (replaces the block's zone; a block
    /// that overlaps another is refused).
    Set { cidr: String, zone: String },
    /// Remove the block CIDR.
    Remove { cidr: String },
    /// Every block and its zone.
    List,
}

pub fn run(api: &Api, command: &ZoneCommand, output: Output) -> Result<String, String> {
    let ZoneCommand::Map { command } = command;
    match command {
        MapCommand::Set { cidr, zone } => {
            let mapping = ZoneMapping {
                cidr: cidr.clone(),
                zone: zone.clone(),
            };
            let saved: ZoneMapping = api.post("/api/v1/zone-map", Some(&mapping))?;
            Ok(match output {
                Output::Json => json(&saved),
                Output::Table => format!("{} -> {}\n", saved.cidr, saved.zone),
            })
        }
        MapCommand::Remove { cidr } => {
            let removed: ZoneMappingRemoved = api.delete(&format!("/api/v1/zone-map/{cidr}"))?;
            Ok(match output {
                Output::Json => json(&removed),
                Output::Table => format!("{} removed\n", removed.removed),
            })
        }
        MapCommand::List => {
            let map: Vec<ZoneMapping> = api.get("/api/v1/zone-map")?;
            Ok(match output {
                Output::Json => json(&map),
                Output::Table => {
                    let rows = map.into_iter().map(|m| vec![m.cidr, m.zone]).collect();
                    table(&["CIDR", "ZONE"], rows)
                }
            })
        }
    }
}
