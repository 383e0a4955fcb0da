//! Backstage's own `catalog.locations`: its `type: file` entries are entity files of the
//! embedded catalog, relative to the working directory as Backstage resolves them; other types
//! are skipped with a log line.

use std::collections::BTreeSet;

use serde_json::json;
use tokio::process::Command;

use crate::on_both_databases;
use crate::support::{Api, BIN, DbKind, SERVICE_TOKEN, TestDb, config_files, spawn_serving};

/// One document: a group and its members.
const SINGLE: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: single-team}
spec: {type: team, children: [], members: [alice, bob]}
";

/// Several documents: users, one of them a member of the group by `memberOf`.
const MULTI: &str = "\
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: carol}
spec: {memberOf: [multi-team]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: dave}
spec: {memberOf: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: multi-team}
spec: {type: team, children: []}
";

const LOCATIONS: &str = "\
catalog:
  rules: [{allow: [Component, User, Group]}]
  locations:
    - type: file
      target: catalog/single.yaml
    - type: url
      target: https://github.com/acme/catalog/blob/main/all.yaml
    - type: file
      target: ./catalog/../catalog/multi.yaml
      rules: [{allow: [User, Group]}]
";

/// The users a send to `group` reaches.
async fn members(api: &Api, group: &str) -> BTreeSet<String> {
    let created = api
        .post(
            "",
            SERVICE_TOKEN,
            &json!({
                "recipients": {"type": "entity", "entityRef": group},
                "payload": {"title": "to a group"}
            }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    created
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["user"].as_str().unwrap().to_owned())
        .collect()
}

fn users(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|u| format!("user:default/{u}")).collect()
}

async fn file_locations_give_recipients(kind: DbKind) {
    let Some(db) = TestDb::create(kind) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    std::fs::create_dir(&catalog).unwrap();
    std::fs::write(catalog.join("single.yaml"), SINGLE).unwrap();
    std::fs::write(catalog.join("multi.yaml"), MULTI).unwrap();
    // The configuration files sit elsewhere: relative targets follow the working directory,
    // not the file that names them.
    let config_dir = tempfile::tempdir().unwrap();
    let configs = config_files(&db, config_dir.path(), LOCATIONS);
    let mut command = Command::new(BIN);
    command.current_dir(dir.path()).env_remove("RUST_LOG");
    for config in &configs {
        command.arg("--config").arg(config);
    }
    command
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve");
    let (_child, address, logged, _) = spawn_serving(command, &[]).await;
    let api = Api::new(&format!("http://{address}"));

    assert_eq!(
        members(&api, "group:default/single-team").await,
        users(&["alice", "bob"])
    );
    assert_eq!(
        members(&api, "group:default/multi-team").await,
        users(&["carol"])
    );
    let skipped: Vec<&String> = logged
        .iter()
        .filter(|line| line.contains("only entries of type file are read"))
        .collect();
    assert_eq!(
        skipped.len(),
        1,
        "one line for the skipped entries: {logged:#?}"
    );
    assert!(
        skipped[0].contains("url https://github.com/acme/catalog/blob/main/all.yaml"),
        "{}",
        skipped[0]
    );
}

on_both_databases!(file_locations_give_recipients);

/// A relative target that is not there from the working directory stops the start, naming the
/// file as it was resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_location_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app-config.yaml");
    std::fs::write(
        &config,
        "backend: {database: {client: better-sqlite3, connection: ':memory:'}}\n\
         catalog: {locations: [{type: file, target: ../examples/org.yaml}]}\n",
    )
    .unwrap();
    let workdir = dir.path().join("packages/backend");
    std::fs::create_dir_all(&workdir).unwrap();
    let out = Command::new(BIN)
        .current_dir(&workdir)
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "cannot load the catalog: ../examples/org.yaml: cannot read the catalog file"
        ),
        "{stderr}"
    );
}
