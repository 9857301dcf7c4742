//! A reproducible random catalog, the shape `make bench` measures: Component `c{i}`
//! depends on 0–6 (on average 3) Components created before it, so the graph is a
//! DAG; 1% of the references name Components that do not exist, and 0.05% point
//! forwards, closing cycles. Each provides one API and belongs to one of 200 teams.

use crate::Refs;

/// A small seedable generator (xorshift), so every run builds the same catalog.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `n` Components as `(name, references)`, drawn from `rng`.
pub fn random_catalog(n: usize, rng: &mut Rng) -> Vec<(String, Refs)> {
    (0..n)
        .map(|i| {
            let depends_on = (0..rng.below(7))
                .map(|_| match rng.below(10_000) {
                    0..100 => format!("missing-{}", rng.below(1_000)),
                    100..105 => format!("c{}", i as u64 + 1 + rng.below((n - i) as u64)),
                    _ => format!("c{}", rng.below(i.max(1) as u64)),
                })
                .collect();
            let refs = Refs {
                owner: format!("team-{}", i % 200),
                depends_on,
                provides_apis: vec![format!("api-{i}")],
                ..Default::default()
            };
            (format!("c{i}"), refs)
        })
        .collect()
}
