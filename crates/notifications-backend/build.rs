//! The migrations are compiled in (`embed_migrations!`), but cargo does not know the macro reads
//! them: without this, adding or editing a migration would leave an existing build stale.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
