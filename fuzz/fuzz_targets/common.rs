//! The fitted house-price pipeline the row and REST targets decode against: run once per fuzzing
//! process into a private temporary store.

use std::path::PathBuf;
use std::sync::OnceLock;

use mlpipe::commands::run::{RunArgs, run};
use mlpipe::executor::Progress;
use mlpipe::predictor::Scorer;
use mlpipe::store::LocalStore;

struct Quiet;
impl Progress for Quiet {}

pub fn scorer() -> &'static Scorer {
    static SCORER: OnceLock<Scorer> = OnceLock::new();
    SCORER.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let store_dir = std::env::temp_dir().join(format!("mlpipe-fuzz-store-{}", std::process::id()));
        let args = RunArgs {
            pipeline: root.join("pipelines/house-prices.toml"),
            store: store_dir.clone(),
            seed: None,
            baseline: None,
            update_lock: false,
        };
        let report = run(&args, &Quiet).expect("the shipped pipeline runs");
        let store = LocalStore::open(&store_dir).expect("store opens");
        let record = mlpipe::commands::resolve_run(&store, &report.run.hex()).expect("run record");
        let scorer = Scorer::load(&store, &record).expect("scorer loads");
        let _ = std::fs::remove_dir_all(&store_dir);
        scorer
    })
}
