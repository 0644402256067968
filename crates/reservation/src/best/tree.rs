//! A max segment tree over row ranks: "the next row from rank r on whose value is at
//! least k" in O(log rows), so that rows which cannot serve a request are never walked.

#[derive(Debug, Clone)]
pub(super) struct RankTree {
    /// Leaves start here; `max[1]` is the root.
    leaves: usize,
    max: Vec<u32>,
}

impl RankTree {
    pub fn new(ranks: usize) -> Self {
        let leaves = ranks.next_power_of_two().max(1);
        RankTree { leaves, max: vec![0; 2 * leaves] }
    }

    pub fn set(&mut self, rank: u32, value: u32) {
        let mut node = self.leaves + rank as usize;
        self.max[node] = value;
        while node > 1 {
            node /= 2;
            self.max[node] = self.max[2 * node].max(self.max[2 * node + 1]);
        }
    }

    /// The first rank at or after `from` whose value is at least `k`.
    pub fn next_at_least(&self, from: u32, k: u32) -> Option<u32> {
        self.find(1, 0, self.leaves, from as usize, k).map(|r| r as u32)
    }

    fn find(&self, node: usize, lo: usize, hi: usize, from: usize, k: u32) -> Option<usize> {
        if hi <= from || self.max[node] < k {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = (lo + hi) / 2;
        self.find(2 * node, lo, mid, from, k).or_else(|| self.find(2 * node + 1, mid, hi, from, k))
    }

    /// The ranks from the lowest on whose value is at least `k`, ascending.
    pub fn walk(&self, k: u32) -> impl Iterator<Item = u32> + '_ {
        let mut from = 0;
        std::iter::from_fn(move || {
            let rank = self.next_at_least(from, k)?;
            from = rank + 1;
            Some(rank)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RankTree;

    #[test]
    fn finds_the_next_rank_with_a_large_enough_value() {
        let mut tree = RankTree::new(10);
        for (rank, value) in [(1, 3), (4, 1), (7, 5), (9, 2)] {
            tree.set(rank, value);
        }
        assert_eq!(tree.walk(1).collect::<Vec<_>>(), [1, 4, 7, 9]);
        assert_eq!(tree.walk(2).collect::<Vec<_>>(), [1, 7, 9]);
        assert_eq!(tree.walk(4).collect::<Vec<_>>(), [7]);
        assert_eq!(tree.next_at_least(2, 3), Some(7));
        assert_eq!(tree.next_at_least(8, 3), None);
        tree.set(7, 0);
        assert_eq!(tree.walk(3).collect::<Vec<_>>(), [1]);
        assert_eq!(RankTree::new(0).walk(1).count(), 0);
    }
}
