//! A segment tree over row ranks holding each row's bit set of what it can serve (see
//! [`super::index::run_bits`]): "the next row from rank r on with bit b set" in
//! O(log rows), so that rows which cannot serve a request are never walked.

#[derive(Debug, Clone)]
pub(super) struct RankTree {
    /// Leaves start here; `any[1]` is the root; a node holds the union of its leaves.
    leaves: usize,
    any: Vec<u64>,
}

impl RankTree {
    pub fn new(ranks: usize) -> Self {
        let leaves = ranks.next_power_of_two().max(1);
        RankTree { leaves, any: vec![0; 2 * leaves] }
    }

    pub fn set(&mut self, rank: u32, bits: u64) {
        let mut node = self.leaves + rank as usize;
        self.any[node] = bits;
        while node > 1 {
            node /= 2;
            self.any[node] = self.any[2 * node] | self.any[2 * node + 1];
        }
    }

    /// The first rank at or after `from` with a bit of `bits` set.
    pub fn next_with(&self, from: u32, bits: u64) -> Option<u32> {
        self.find(1, 0, self.leaves, from as usize, bits).map(|r| r as u32)
    }

    fn find(&self, node: usize, lo: usize, hi: usize, from: usize, bits: u64) -> Option<usize> {
        if hi <= from || self.any[node] & bits == 0 {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = (lo + hi) / 2;
        self.find(2 * node, lo, mid, from, bits).or_else(|| self.find(2 * node + 1, mid, hi, from, bits))
    }

    /// The ranks with a bit of `bits` set, ascending.
    pub fn walk(&self, bits: u64) -> impl Iterator<Item = u32> + '_ {
        let mut from = 0;
        std::iter::from_fn(move || {
            let rank = self.next_with(from, bits)?;
            from = rank + 1;
            Some(rank)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RankTree;

    #[test]
    fn finds_the_next_rank_with_a_bit_set() {
        let mut tree = RankTree::new(10);
        for (rank, bits) in [(1, 0b011), (4, 0b001), (7, 0b110), (9, 0b010)] {
            tree.set(rank, bits);
        }
        assert_eq!(tree.walk(0b001).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(tree.walk(0b010).collect::<Vec<_>>(), [1, 7, 9]);
        assert_eq!(tree.walk(0b100).collect::<Vec<_>>(), [7]);
        assert_eq!(tree.walk(0b101).collect::<Vec<_>>(), [1, 4, 7]);
        assert_eq!(tree.next_with(2, 0b010), Some(7));
        assert_eq!(tree.next_with(8, 0b100), None);
        tree.set(7, 0);
        assert_eq!(tree.walk(0b110).collect::<Vec<_>>(), [1, 9]);
        assert_eq!(RankTree::new(0).walk(1).count(), 0);
    }
}
