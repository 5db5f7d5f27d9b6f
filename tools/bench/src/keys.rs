//! Key-space distributions: which key index each request uses.

use std::str::FromStr;

use rand::Rng;

use crate::Error;

/// How key indexes in `0..keys` are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// 0, 1, 2, ... wrapping at the key count (each thread starts at its own offset).
    Sequential,
    /// Zipf with exponent `alpha`: key 0 is the hottest.
    Zipf(f64),
}

impl FromStr for KeyDist {
    type Err = Error;

    /// `uniform`, `sequential` or `zipf:ALPHA` (`zipf` alone means alpha 0.99).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::Usage(format!(
                "--key-dist {s:?}: use uniform, sequential or zipf:ALPHA"
            ))
        };
        match s.split_once(':') {
            None if s == "uniform" => Ok(KeyDist::Uniform),
            None if s == "sequential" => Ok(KeyDist::Sequential),
            None if s == "zipf" => Ok(KeyDist::Zipf(0.99)),
            Some(("zipf", a)) => {
                let alpha: f64 = a.parse().map_err(|_| bad())?;
                if alpha.is_finite() && alpha > 0.0 {
                    Ok(KeyDist::Zipf(alpha))
                } else {
                    Err(Error::Usage(format!("--key-dist {s:?}: alpha must be > 0")))
                }
            }
            _ => Err(bad()),
        }
    }
}

/// Draws key indexes for one thread.
pub enum KeyGen {
    Uniform { keys: u64 },
    Sequential { keys: u64, next: u64 },
    Zipf(Zipf),
}

impl KeyGen {
    /// `start` is where a sequential walk begins (spread threads over the key space).
    pub fn new(dist: KeyDist, keys: u64, start: u64) -> KeyGen {
        match dist {
            KeyDist::Uniform => KeyGen::Uniform { keys },
            KeyDist::Sequential => KeyGen::Sequential {
                keys,
                next: start % keys,
            },
            KeyDist::Zipf(alpha) => KeyGen::Zipf(Zipf::new(keys, alpha)),
        }
    }

    pub fn next<R: Rng>(&mut self, rng: &mut R) -> u64 {
        match self {
            KeyGen::Uniform { keys } => rng.gen_range(0..*keys),
            KeyGen::Sequential { keys, next } => {
                let k = *next;
                *next = (k + 1) % *keys;
                k
            }
            KeyGen::Zipf(z) => z.sample(rng) - 1,
        }
    }
}

/// Zipf over ranks `1..=n` with exponent `s`: P(k) proportional to k^-s. Rejection-inversion
/// sampling (W. Hörmann, G. Derflinger, "Rejection-inversion to generate variates from monotone
/// discrete distributions", 1996): O(1) per sample and no table, for any n and s > 0.
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    pub fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> u64 {
        loop {
            let u: f64 =
                self.h_integral_n + rng.gen::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// x^-s.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// An antiderivative of h: (x^(1-s) - 1) / (1 - s), or ln x when s = 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn counts(dist: KeyDist, keys: u64, samples: usize) -> Vec<u64> {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut gen = KeyGen::new(dist, keys, 0);
        let mut c = vec![0u64; keys as usize];
        for _ in 0..samples {
            let k = gen.next(&mut rng);
            c[k as usize] += 1;
        }
        c
    }

    /// Largest |empirical - expected| of the cumulative distribution (Kolmogorov-Smirnov).
    fn ks_distance(counts: &[u64], expected: &[f64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let (mut ce, mut cx, mut worst) = (0.0, 0.0, 0.0f64);
        for (c, e) in counts.iter().zip(expected) {
            ce += *c as f64 / total as f64;
            cx += e;
            worst = worst.max((ce - cx).abs());
        }
        worst
    }

    fn zipf_pmf(n: usize, s: f64) -> Vec<f64> {
        let w: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let sum: f64 = w.iter().sum();
        w.into_iter().map(|x| x / sum).collect()
    }

    #[test]
    fn parses_distributions() {
        assert_eq!("uniform".parse::<KeyDist>().unwrap(), KeyDist::Uniform);
        assert_eq!(
            "sequential".parse::<KeyDist>().unwrap(),
            KeyDist::Sequential
        );
        assert_eq!("zipf".parse::<KeyDist>().unwrap(), KeyDist::Zipf(0.99));
        assert_eq!("zipf:1.2".parse::<KeyDist>().unwrap(), KeyDist::Zipf(1.2));
        for bad in ["zipf:0", "zipf:-1", "zipf:x", "gauss", ""] {
            assert!(bad.parse::<KeyDist>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uniform_is_flat() {
        let c = counts(KeyDist::Uniform, 100, 200_000);
        let d = ks_distance(&c, &[0.01; 100]);
        assert!(d < 0.01, "KS distance {d}");
        assert!(c.iter().all(|&x| x > 1500 && x < 2500), "{c:?}");
    }

    #[test]
    fn sequential_wraps_in_order() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut gen = KeyGen::new(KeyDist::Sequential, 5, 3);
        let got: Vec<u64> = (0..7).map(|_| gen.next(&mut rng)).collect();
        assert_eq!(got, [3, 4, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn zipf_matches_its_pmf() {
        for s in [0.5, 0.99, 1.0, 1.5] {
            let n = 1000;
            let c = counts(KeyDist::Zipf(s), n as u64, 300_000);
            let pmf = zipf_pmf(n, s);
            let d = ks_distance(&c, &pmf);
            assert!(d < 0.01, "alpha {s}: KS distance {d}");
            // The hottest key's share is close to its probability.
            let top = c[0] as f64 / 300_000.0;
            assert!(
                (top - pmf[0]).abs() < 0.1 * pmf[0] + 0.002,
                "alpha {s}: {top} vs {}",
                pmf[0]
            );
        }
    }

    #[test]
    fn zipf_stays_in_range() {
        let mut rng = SmallRng::seed_from_u64(3);
        for n in [1u64, 2, 10] {
            let z = Zipf::new(n, 0.99);
            for _ in 0..10_000 {
                let k = z.sample(&mut rng);
                assert!((1..=n).contains(&k), "{k} of {n}");
            }
        }
    }
}
