# Shortcuts; every recipe is a plain command you can run without `just`.

# Build the release binary.
build:
    cargo build --release

# The test command of the README.
test:
    cargo test --release

# Run the house-price pipeline, reproduce it, predict on the unseen rows.
demo: build
    target/release/mlpipe run pipelines/house-prices.toml
    target/release/mlpipe reproduce "$(target/release/mlpipe run pipelines/house-prices.toml --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')"

# Benchmarks against the peers (run bench/peers/setup once first).
bench: build
    python3 bench/run.py

# Format and lint checks, as CI runs them.
lint:
    cargo fmt --check
    cargo clippy --release --all-targets -- -D warnings

# Reliability checks at full size: 100 SIGKILLs per crash loop, then 10 minutes per fuzz target.
reliability:
    scripts/reliability tests 100
    scripts/reliability fuzz 600
