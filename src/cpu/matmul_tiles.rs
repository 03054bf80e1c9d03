//! The matmul twin's product (cpu/matmul.rs stores it): op(A) (m, k) · op(B) (k, n) over a
//! range of C's rows, in tiles of C whose accumulators stay in vector registers. op(A)'s
//! rows are packed once into blocks of a tile's rows and op(B) a panel of a tile's columns
//! at a time, both p-major, so that a tile reads both in order whatever the transposes.
//! Packs are padded to whole tiles with zeros and the padding's results dropped. Each
//! thread keeps its pack buffers from one product to the next (`Packs`).
//!
//! Each element of C is summed over p = 0, 1, …, k − 1 in that order:
//! - f32 on x86-64 with AVX-512F, or AVX2 and FMA: a fused multiply-add each step, in tiles
//!   of 8 × 48 (AVX-512) or 6 × 16 (AVX2). Both give the bits of a triple loop of
//!   `mul_add`s.
//! - Elsewhere (f64, and f32 on other CPUs): a multiply, then an add, in 4 × 8 tiles of the
//!   target's own vectors (SSE2, NEON), or for f64 4 × 24 (AVX-512) and 4 × 12 (AVX2). The
//!   bits of the plain triple loop.
//!
//! So the bits depend neither on the thread count nor on the vector width, only on whether
//! the CPU fuses. `cargo bench --bench kernels -- cpu_matmul` times it.

use std::cell::Cell;
use std::ops::Range;

use num_traits::Float;

use crate::cpu::Real;

/// A multiply's operands as stored, with their shape: op(A) is (m, k), op(B) (k, n).
pub(crate) struct Operands<'a, T> {
    pub a: &'a [T],
    pub b: &'a [T],
    /// A is stored (k, m).
    pub trans_a: bool,
    /// B is stored (n, k).
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl<T: Copy> Operands<'_, T> {
    /// op(A)\[row, p\].
    pub fn a_at(&self, row: usize, p: usize) -> T {
        if self.trans_a {
            self.a[p * self.m + row]
        } else {
            self.a[row * self.k + p]
        }
    }

    /// op(B)\[p, col\].
    #[cfg(test)]
    pub fn b_at(&self, p: usize, col: usize) -> T {
        if self.trans_b {
            self.b[col * self.k + p]
        } else {
            self.b[p * self.n + col]
        }
    }
}

impl<'a, T: Copy> Operands<'a, T> {
    /// The operands of (op(A)\[rows, ..\] · op(B))ᵀ = op(B)ᵀ · op(A)\[rows, ..\]ᵀ, an
    /// (n, rows.len()) product; None where A is stored (k, m) and `rows` is not all of its
    /// rows (their columns of A would not lie together).
    fn transposed(&self, rows: Range<usize>) -> Option<Operands<'a, T>> {
        let b = if !self.trans_a {
            // A stored (m, k): the rows lie together, op(A)[rows]ᵀ is B stored (n', k).
            &self.a[rows.start * self.k..rows.end * self.k]
        } else if rows == (0..self.m) {
            // A stored (k, m) is op(A)ᵀ, B stored (k, n').
            self.a
        } else {
            return None;
        };
        Some(Operands {
            a: self.b,
            b,
            // op(B)ᵀ: B stored (n, k) is it as stored; B stored (k, n) is its transpose.
            trans_a: !self.trans_b,
            trans_b: !self.trans_a,
            m: self.n,
            n: rows.len(),
            k: self.k,
        })
    }
}

impl<'a, T: Real> Operands<'a, T> {
    /// The same operands as f32s, where T is f32.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn f32s(&self) -> Option<Operands<'a, f32>> {
        Some(Operands {
            a: T::f32s(self.a)?,
            b: T::f32s(self.b)?,
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            m: self.m,
            n: self.n,
            k: self.k,
        })
    }
}

/// Products at most this wide (n) with at least twice as many rows are computed transposed
/// (see [`Operands::transposed`]): a tile is 48 columns wide with AVX-512.
const SKINNY_COLS: usize = 24;

/// products (rows.len(), n) = op(A)\[rows, ..\] · op(B), in the form [`TileForm::detect`]
/// names: for f32 its tiles; for f64 the portable tiles (a multiply, then an add) in the
/// same vector registers, 3 a row of the tile. A skinny product (n ≤ SKINNY_COLS, at
/// least 2n rows) is computed as its transpose, the rows across the tiles, then
/// transposed back: the same sums in the same order, so the same bits.
pub(crate) fn product<T: Real>(products: &mut [T], operands: &Operands<T>, rows: Range<usize>) {
    let n = operands.n;
    if n <= SKINNY_COLS && rows.len() >= 2 * n {
        if let Some(transposed) = operands.transposed(rows.clone()) {
            let mut columns = vec![T::zero(); n * rows.len()];
            product_as_given(&mut columns, &transposed, 0..n);
            for (j, column) in columns.chunks_exact(rows.len()).enumerate() {
                for (row, &value) in products.chunks_exact_mut(n).zip(column) {
                    row[j] = value;
                }
            }
            return;
        }
    }
    product_as_given(products, operands, rows)
}

/// [`product`] of the operands as given.
fn product_as_given<T: Real>(products: &mut [T], operands: &Operands<T>, rows: Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    {
        let form = TileForm::detect();
        if let (Some(products), Some(operands)) = (T::f32s_mut(products), operands.f32s()) {
            match form {
                // SAFETY: detect() says Avx512 only where the CPU has AVX-512F.
                TileForm::Avx512 => unsafe { product_avx512(products, &operands, rows) },
                // SAFETY: detect() says Avx2 only where the CPU has AVX2 and FMA.
                TileForm::Avx2 => unsafe { product_avx2(products, &operands, rows) },
                TileForm::Portable => product_portable(products, &operands, rows),
            }
            return;
        }
        match form {
            // SAFETY: as above.
            TileForm::Avx512 => return unsafe { product_unfused_avx512(products, operands, rows) },
            // SAFETY: as above.
            TileForm::Avx2 => return unsafe { product_unfused_avx2(products, operands, rows) },
            TileForm::Portable => {}
        }
    }
    product_portable(products, operands, rows)
}

/// The tiles the matmul twin runs for f32 on this CPU: the widest with fused multiply-adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileForm {
    /// x86-64 with AVX-512F: 8 × 48 f32 a tile, fused multiply-adds.
    Avx512,
    /// x86-64 with AVX2 and FMA: 6 × 16, fused multiply-adds.
    Avx2,
    /// The target's own vectors (SSE2 on x86-64, NEON on aarch64): 4 × 8, a multiply then
    /// an add.
    Portable,
}

impl TileForm {
    /// The form this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return TileForm::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return TileForm::Avx2;
            }
        }
        TileForm::Portable
    }

    /// "AVX-512 FMA", "AVX2 FMA" or "portable".
    pub fn name(self) -> &'static str {
        match self {
            TileForm::Avx512 => "AVX-512 FMA",
            TileForm::Avx2 => "AVX2 FMA",
            TileForm::Portable => "portable",
        }
    }

    /// Whether each step is a fused multiply-add (else a multiply, then an add).
    pub fn fuses(self) -> bool {
        self != TileForm::Portable
    }
}

/// [`product_tiles`] in [`tile_avx512`]'s 8 × 48 tiles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn product_avx512(products: &mut [f32], operands: &Operands<f32>, rows: Range<usize>) {
    // The closures have product_avx512's target features, so they may call tile_avx512
    // and pack_b_panel_avx512.
    product_tiles::<f32, 8, 48>(
        products,
        operands,
        rows,
        |a_pack, b_panel| tile_avx512(a_pack, b_panel),
        |panel, operands, col0, cols| pack_b_panel_avx512(panel, operands, col0, cols),
    );
}

/// [`product_tiles`] in [`tile_avx2`]'s 6 × 16 tiles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn product_avx2(products: &mut [f32], operands: &Operands<f32>, rows: Range<usize>) {
    // The closure has product_avx2's target features, so it may call tile_avx2.
    product_tiles::<f32, 6, 16>(
        products,
        operands,
        rows,
        |a_pack, b_panel| tile_avx2(a_pack, b_panel),
        pack_b_panel,
    );
}

/// [`product_tiles`] in [`tile_portable`]'s tiles of 4 rows × 24 f64 (3 zmm registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn product_unfused_avx512<T: Real>(products: &mut [T], operands: &Operands<T>, rows: Range<usize>) {
    product_tiles::<T, 4, 24>(
        products,
        operands,
        rows,
        tile_portable::<T, 4, 24>,
        pack_b_panel,
    );
}

/// [`product_tiles`] in [`tile_portable`]'s tiles of 4 rows × 12 f64 (3 ymm registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn product_unfused_avx2<T: Real>(products: &mut [T], operands: &Operands<T>, rows: Range<usize>) {
    product_tiles::<T, 4, 12>(
        products,
        operands,
        rows,
        tile_portable::<T, 4, 12>,
        pack_b_panel,
    );
}

/// [`product_tiles`] in [`tile_portable`]'s 4 × 8 tiles, with the target's own vectors.
/// Never inlined: inlined into the threaded caller, its loops were left unvectorised (9
/// GFLOP/s instead of 51–62 on SSE2).
#[inline(never)]
fn product_portable<T: Real>(products: &mut [T], operands: &Operands<T>, rows: Range<usize>) {
    product_tiles::<T, 4, 8>(
        products,
        operands,
        rows,
        tile_portable::<T, 4, 8>,
        pack_b_panel,
    );
}

/// [`product`] in tiles of ROWS × COLS, each computed by `tile` from a block of op(A)'s
/// packed rows and a panel of op(B)'s columns, packed by `pack_b` (as [`pack_b_panel`]).
#[inline(always)]
fn product_tiles<T: Real, const ROWS: usize, const COLS: usize>(
    products: &mut [T],
    operands: &Operands<T>,
    rows: Range<usize>,
    tile: impl Fn(&[T], &[T]) -> [[T; COLS]; ROWS],
    pack_b: impl Fn(&mut [[T; COLS]], &Operands<T>, usize, usize),
) {
    let (n, k) = (operands.n, operands.k);
    let blocks = rows.len().div_ceil(ROWS);
    let mut packs = Packs::take();
    let (a_pack, b_panel) = packs.values::<T>(blocks * k * ROWS, k * COLS);
    for (block, pack) in a_pack.chunks_exact_mut(k * ROWS).enumerate() {
        let row0 = rows.start + block * ROWS;
        let count = ROWS.min(rows.end - row0);
        let pack = pack.as_chunks_mut::<ROWS>().0;
        pack_a_block(pack, operands, row0, count);
        // The padding 0, not what an earlier product left (a subnormal there would slow
        // the tile's multiplies).
        pack.iter_mut()
            .for_each(|values| values[count..].fill(T::zero()));
    }
    for col0 in (0..n).step_by(COLS) {
        let cols = COLS.min(n - col0);
        let panel = b_panel.as_chunks_mut::<COLS>().0;
        pack_b(panel, operands, col0, cols);
        panel
            .iter_mut()
            .for_each(|values| values[cols..].fill(T::zero()));
        for (block, pack) in a_pack.chunks_exact(k * ROWS).enumerate() {
            let acc = tile(pack, b_panel);
            let row0 = block * ROWS;
            for (i, acc_row) in acc.iter().enumerate().take(rows.len() - row0) {
                let start = (row0 + i) * n + col0;
                products[start..start + cols].copy_from_slice(&acc_row[..cols]);
            }
        }
    }
}

thread_local! {
    /// Each thread's pack buffers (op(A)'s blocks, op(B)'s panel), kept from one product to
    /// the next. Allocated and freed at every product, their pages went back to the kernel
    /// and were faulted in again, with TLB shootdowns across the cores: a 128 × 40 × 400
    /// product took 77–81 µs on a 2-core VM, 31–32 µs with the buffers kept. They hold a
    /// thread's largest packs so far (4 MB for the wide VAE's 2048-wide layers at batch
    /// 1024, 512 rows a thread).
    static PACKS: Cell<[Vec<u64>; 2]> = const { Cell::new([Vec::new(), Vec::new()]) };
}

/// This thread's pack buffers, taken for one product and put back when dropped (a product
/// that finds them taken starts empty ones).
struct Packs([Vec<u64>; 2]);

impl Packs {
    fn take() -> Packs {
        Packs(PACKS.try_with(Cell::take).unwrap_or_default())
    }

    /// The buffers as `a_len` and `b_len` values of T: values an earlier product left
    /// there, or 0 (a product writes every value it reads, the padding as 0).
    fn values<T: Real>(&mut self, a_len: usize, b_len: usize) -> (&mut [T], &mut [T]) {
        let [a, b] = &mut self.0;
        (values_in(a, a_len), values_in(b, b_len))
    }
}

impl Drop for Packs {
    fn drop(&mut self) {
        let buffers = std::mem::take(&mut self.0);
        // Where the thread is ending, its buffers go with it.
        let _ = PACKS.try_with(|packs| packs.set(buffers));
    }
}

/// The first `len` values of T in `buffer`, grown (with zeros) to hold them.
fn values_in<T: Real>(buffer: &mut Vec<u64>, len: usize) -> &mut [T] {
    let words = (len * std::mem::size_of::<T>()).div_ceil(8);
    if buffer.len() < words {
        buffer.resize(words, 0);
    }
    &mut bytemuck::cast_slice_mut::<u64, T>(&mut buffer[..words])[..len]
}

/// pack (k, ROWS) = op(A)\[row0 .. row0 + count, ..\] p-major: pack\[p\]\[i\] = op(A)\[row0 + i,
/// p\]. Values past `count` are left as they are (product_tiles zeroes them).
#[inline(always)]
fn pack_a_block<T: Float, const ROWS: usize>(
    pack: &mut [[T; ROWS]],
    operands: &Operands<T>,
    row0: usize,
    count: usize,
) {
    let (m, k) = (operands.m, operands.k);
    if operands.trans_a {
        // A is stored (k, m): the block's values of one p lie side by side. A whole block's
        // are copied as an array of ROWS (moves in registers, not a call to memcpy).
        for (p, values) in pack.iter_mut().enumerate() {
            let stored = &operands.a[p * m + row0..p * m + row0 + count];
            match <&[T; ROWS]>::try_from(stored) {
                Ok(whole) => *values = *whole,
                Err(_) => values[..count].copy_from_slice(stored),
            }
        }
    } else {
        for i in 0..count {
            let row = &operands.a[(row0 + i) * k..(row0 + i + 1) * k];
            for (values, &x) in pack.iter_mut().zip(row) {
                values[i] = x;
            }
        }
    }
}

/// panel (k, COLS) = op(B)\[.., col0 .. col0 + cols\] p-major: panel\[p\]\[j\] = op(B)\[p,
/// col0 + j\]. Values past `cols` are left as they are (product_tiles zeroes them).
#[inline(always)]
fn pack_b_panel<T: Float, const COLS: usize>(
    panel: &mut [[T; COLS]],
    operands: &Operands<T>,
    col0: usize,
    cols: usize,
) {
    let (n, k) = (operands.n, operands.k);
    if operands.trans_b {
        // B is stored (n, k): a column of op(B) is a row of B. Read 16 values of each
        // column in turn, so that the 16 panel rows written stay in the L1 cache.
        for (p0, panel_rows) in panel.chunks_mut(16).enumerate() {
            let p0 = p0 * 16;
            for j in 0..cols {
                let column =
                    &operands.b[(col0 + j) * k + p0..(col0 + j) * k + p0 + panel_rows.len()];
                for (values, &x) in panel_rows.iter_mut().zip(column) {
                    values[j] = x;
                }
            }
        }
    } else {
        // A whole panel's row is copied as an array of COLS (moves in registers, not a call
        // to memcpy: 14 % of `probe --raw`'s time went to those calls).
        for (p, values) in panel.iter_mut().enumerate() {
            let stored = &operands.b[p * n + col0..p * n + col0 + cols];
            match <&[T; COLS]>::try_from(stored) {
                Ok(whole) => *values = *whole,
                Err(_) => values[..cols].copy_from_slice(stored),
            }
        }
    }
}

/// [`pack_b_panel`] for [`tile_avx512`]'s panels of 48 columns. Where B is stored (n, k),
/// each 16 × 16 block (16 columns of op(B), 16 values of p each) is transposed in
/// registers: [`pack_b_panel`] left LLVM to scatter each value to its own panel row (a
/// third of the forward multiply's time on the CPU path). The values past the whole blocks
/// go as in [`pack_b_panel`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pack_b_panel_avx512(
    panel: &mut [[f32; 48]],
    operands: &Operands<f32>,
    col0: usize,
    cols: usize,
) {
    use std::arch::x86_64::{__m512, _mm512_loadu_ps, _mm512_setzero_ps, _mm512_storeu_ps};
    if !operands.trans_b {
        return pack_b_panel(panel, operands, col0, cols);
    }
    let k = operands.k;
    let (whole_p, whole_cols) = (k / 16 * 16, cols / 16 * 16);
    for p0 in (0..whole_p).step_by(16) {
        for j0 in (0..whole_cols).step_by(16) {
            let mut block = [_mm512_setzero_ps(); 16];
            for (j, row) in block.iter_mut().enumerate() {
                let start = (col0 + j0 + j) * k + p0;
                let values = &operands.b[start..start + 16];
                // SAFETY: values holds the 16 floats the load reads.
                *row = unsafe { _mm512_loadu_ps(values.as_ptr()) };
            }
            let columns: [__m512; 16] = transpose_16x16(block);
            for (p, column) in columns.iter().enumerate() {
                let out = &mut panel[p0 + p][j0..j0 + 16];
                // SAFETY: out holds the 16 floats the store writes.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *column) };
            }
        }
    }
    let b = operands.b;
    for (p, values) in panel.iter_mut().enumerate() {
        let columns = if p < whole_p {
            whole_cols..cols
        } else {
            0..cols
        };
        for j in columns {
            values[j] = b[(col0 + j) * k + p];
        }
    }
}

/// The 16 × 16 block whose rows are `rows`, transposed: out\[p\]\[j\] = rows\[j\]\[p\]. Pairs of
/// rows interleave by floats, then by pairs of floats, so that vector 4g + q holds, in its
/// 128-bit lane L, rows 4g .. 4g + 4 at p = 4L + q; two rounds of 128-bit lane shuffles
/// then gather each p's four lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transpose_16x16(rows: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::{
        _mm512_castpd_ps, _mm512_castps_pd, _mm512_setzero_ps, _mm512_shuffle_f32x4,
        _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
    };
    let mut pairs = [_mm512_setzero_ps(); 16];
    for a in 0..8 {
        pairs[2 * a] = _mm512_unpacklo_ps(rows[2 * a], rows[2 * a + 1]);
        pairs[2 * a + 1] = _mm512_unpackhi_ps(rows[2 * a], rows[2 * a + 1]);
    }
    let mut quads = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let [low, high, low2, high2] = [0, 1, 2, 3].map(|i| _mm512_castps_pd(pairs[4 * g + i]));
        quads[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(low, low2));
        quads[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(low, low2));
        quads[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(high, high2));
        quads[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(high, high2));
    }
    let mut out = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        let [g0, g1, g2, g3] = [0, 4, 8, 12].map(|g| quads[g + q]);
        // Lanes 0 and 2 (even) or 1 and 3 (odd) of the first two groups, then of the last two.
        let even = _mm512_shuffle_f32x4::<0x88>(g0, g1);
        let odd = _mm512_shuffle_f32x4::<0xDD>(g0, g1);
        let even2 = _mm512_shuffle_f32x4::<0x88>(g2, g3);
        let odd2 = _mm512_shuffle_f32x4::<0xDD>(g2, g3);
        out[q] = _mm512_shuffle_f32x4::<0x88>(even, even2);
        out[8 + q] = _mm512_shuffle_f32x4::<0xDD>(even, even2);
        out[4 + q] = _mm512_shuffle_f32x4::<0x88>(odd, odd2);
        out[12 + q] = _mm512_shuffle_f32x4::<0xDD>(odd, odd2);
    }
    out
}

/// acc (ROWS, COLS) = Σ over p, in order, of a_pack\[p\] (ROWS) ⊗ b_panel\[p\] (COLS), a
/// multiply then an add each step.
#[inline(always)]
fn tile_portable<T: Float, const ROWS: usize, const COLS: usize>(
    a_pack: &[T],
    b_panel: &[T],
) -> [[T; COLS]; ROWS] {
    let mut acc = [[T::zero(); COLS]; ROWS];
    let (a_values, b_values) = (a_pack.as_chunks::<ROWS>().0, b_panel.as_chunks::<COLS>().0);
    for (a_p, b_p) in a_values.iter().zip(b_values) {
        for (acc_row, &av) in acc.iter_mut().zip(a_p) {
            for (acc, &bv) in acc_row.iter_mut().zip(b_p) {
                *acc = *acc + av * bv;
            }
        }
    }
    acc
}

/// The same sum as [`tile_portable`] for 8 × 48, a fused multiply-add each step: 24 of the
/// 32 zmm registers accumulate, 3 hold a step's b values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tile_avx512(a_pack: &[f32], b_panel: &[f32]) -> [[f32; 48]; 8] {
    use std::arch::x86_64::{__m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps};
    use std::arch::x86_64::{_mm512_setzero_ps, _mm512_storeu_ps};
    let mut acc = [[_mm512_setzero_ps(); 3]; 8];
    let (a_values, b_values) = (a_pack.as_chunks::<8>().0, b_panel.as_chunks::<48>().0);
    for (a_p, b_p) in a_values.iter().zip(b_values) {
        let mut b = [_mm512_setzero_ps(); 3];
        for (b, chunk) in b.iter_mut().zip(b_p.as_chunks::<16>().0) {
            // SAFETY: chunk holds the 16 floats the load reads.
            *b = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
        }
        for (acc_row, &av) in acc.iter_mut().zip(a_p) {
            let av: __m512 = _mm512_set1_ps(av);
            for (acc, &bv) in acc_row.iter_mut().zip(&b) {
                *acc = _mm512_fmadd_ps(av, bv, *acc);
            }
        }
    }
    let mut out = [[0.0; 48]; 8];
    for (out_row, acc_row) in out.iter_mut().zip(&acc) {
        for (chunk, &acc) in out_row.as_chunks_mut::<16>().0.iter_mut().zip(acc_row) {
            // SAFETY: chunk holds the 16 floats the store writes.
            unsafe { _mm512_storeu_ps(chunk.as_mut_ptr(), acc) };
        }
    }
    out
}

/// The same sum as [`tile_portable`] for 6 × 16, a fused multiply-add each step: 12 of the
/// 16 ymm registers accumulate, 2 hold a step's b values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tile_avx2(a_pack: &[f32], b_panel: &[f32]) -> [[f32; 16]; 6] {
    use std::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps};
    use std::arch::x86_64::{_mm256_setzero_ps, _mm256_storeu_ps};
    let mut acc = [[_mm256_setzero_ps(); 2]; 6];
    let (a_values, b_values) = (a_pack.as_chunks::<6>().0, b_panel.as_chunks::<16>().0);
    for (a_p, b_p) in a_values.iter().zip(b_values) {
        let mut b = [_mm256_setzero_ps(); 2];
        for (b, chunk) in b.iter_mut().zip(b_p.as_chunks::<8>().0) {
            // SAFETY: chunk holds the 8 floats the load reads.
            *b = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
        }
        for (acc_row, &av) in acc.iter_mut().zip(a_p) {
            let av: __m256 = _mm256_set1_ps(av);
            for (acc, &bv) in acc_row.iter_mut().zip(&b) {
                *acc = _mm256_fmadd_ps(av, bv, *acc);
            }
        }
    }
    let mut out = [[0.0; 16]; 6];
    for (out_row, acc_row) in out.iter_mut().zip(&acc) {
        for (chunk, &acc) in out_row.as_chunks_mut::<8>().0.iter_mut().zip(acc_row) {
            // SAFETY: chunk holds the 8 floats the store writes.
            unsafe { _mm256_storeu_ps(chunk.as_mut_ptr(), acc) };
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpu::bits;

    /// op(A)·op(B) by the plain triple loop, each element summed over p in order, by fused
    /// multiply-adds when `fused`.
    pub(crate) fn triple_loop(operands: &Operands<f32>, fused: bool) -> Vec<f32> {
        let (m, n, k) = (operands.m, operands.n, operands.k);
        let mut c = vec![0.0f32; m * n];
        for row in 0..m {
            for col in 0..n {
                let mut sum = 0.0f32;
                for p in 0..k {
                    let (a, b) = (operands.a_at(row, p), operands.b_at(p, col));
                    sum = if fused {
                        a.mul_add(b, sum)
                    } else {
                        sum + a * b
                    };
                }
                c[row * n + col] = sum;
            }
        }
        c
    }

    /// The operands of an (m, n, k) multiply with the given transposes.
    fn operands_of<'a, T>(
        a: &'a [T],
        b: &'a [T],
        (m, n, k): (usize, usize, usize),
        (trans_a, trans_b): (bool, bool),
    ) -> Operands<'a, T> {
        Operands {
            a,
            b,
            trans_a,
            trans_b,
            m,
            n,
            k,
        }
    }

    /// Element (row, col) of op(A)·op(B) in f64, summed over p in order, a multiply then an
    /// add each step: the bits every f64 form must give.
    fn plain_sum(operands: &Operands<f64>, row: usize, col: usize) -> f64 {
        (0..operands.k).fold(0.0f64, |sum, p| {
            sum + operands.a_at(row, p) * operands.b_at(p, col)
        })
    }

    /// Every tile form this CPU can run (portable, AVX2, AVX-512) gives the bits of the
    /// triple loop that fuses as it does, for each transpose and for shapes with partial
    /// tiles at the bottom and right edges, on a part of the rows (as one thread computes
    /// them); and f64, in each width this CPU has, gives the unfused loop's bits.
    #[test]
    fn every_tile_form_gives_the_triple_loops_bits() {
        let value = |i: usize| ((i * 7919 % 263) as f32 - 131.0) / 97.0;
        for (m, n, k) in [
            (1, 1, 1),
            (5, 7, 3),
            (9, 50, 33),
            (13, 97, 17),
            (16, 48, 64),
            (7, 68, 40),
        ] {
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let operands = operands_of(&a, &b, (m, n, k), (trans_a, trans_b));
                let rows = m / 3..m;
                let part = rows.start * n..;
                let mut forms: Vec<(TileForm, Vec<f32>)> = Vec::new();
                let mut portable = vec![f32::NAN; rows.len() * n];
                product_portable(&mut portable, &operands, rows.clone());
                forms.push((TileForm::Portable, portable));
                #[cfg(target_arch = "x86_64")]
                {
                    use std::arch::is_x86_feature_detected;
                    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                        let mut avx2 = vec![f32::NAN; rows.len() * n];
                        // SAFETY: this CPU has AVX2 and FMA, just checked.
                        unsafe { product_avx2(&mut avx2, &operands, rows.clone()) };
                        forms.push((TileForm::Avx2, avx2));
                    }
                    if is_x86_feature_detected!("avx512f") {
                        let mut avx512 = vec![f32::NAN; rows.len() * n];
                        // SAFETY: this CPU has AVX-512F, just checked.
                        unsafe { product_avx512(&mut avx512, &operands, rows.clone()) };
                        forms.push((TileForm::Avx512, avx512));
                    }
                }
                for (form, products) in forms {
                    let expected = triple_loop(&operands, form.fuses());
                    assert_eq!(
                        bits(&products),
                        bits(&expected[part.clone()]),
                        "{form:?}: ({m}, {n}, {k}) trans_a {trans_a} trans_b {trans_b}"
                    );
                }
                let (a64, b64): (Vec<f64>, Vec<f64>) = (
                    a.iter().map(|&x| x.into()).collect(),
                    b.iter().map(|&x| x.into()).collect(),
                );
                let operands64 = operands_of(&a64, &b64, (m, n, k), (trans_a, trans_b));
                let mut forms64: Vec<(&str, Vec<f64>)> = Vec::new();
                let mut portable64 = vec![f64::NAN; rows.len() * n];
                product_portable(&mut portable64, &operands64, rows.clone());
                forms64.push(("portable", portable64));
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx2") {
                        let mut avx2 = vec![f64::NAN; rows.len() * n];
                        // SAFETY: this CPU has AVX2, just checked.
                        unsafe { product_unfused_avx2(&mut avx2, &operands64, rows.clone()) };
                        forms64.push(("avx2", avx2));
                    }
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        let mut avx512 = vec![f64::NAN; rows.len() * n];
                        // SAFETY: this CPU has AVX-512F, just checked.
                        unsafe { product_unfused_avx512(&mut avx512, &operands64, rows.clone()) };
                        forms64.push(("avx512", avx512));
                    }
                }
                for (form, products64) in forms64 {
                    for (i, &got) in products64.iter().enumerate() {
                        let (row, col) = (rows.start + i / n, i % n);
                        let expected = plain_sum(&operands64, row, col);
                        assert_eq!(
                            got.to_bits(),
                            expected.to_bits(),
                            "f64 {form} ({row}, {col})"
                        );
                    }
                }
            }
        }
    }

    /// Skinny products (n ≤ SKINNY_COLS), computed transposed, give the triple loop's bits:
    /// every transpose, all rows and a part of them (taken transposed where A is stored
    /// (m, k), as given where it is stored (k, m)), in f32 and f64.
    #[test]
    fn skinny_products_give_the_triple_loops_bits() {
        let value = |i: usize| ((i * 7919 % 263) as f32 - 131.0) / 97.0;
        let fuses = TileForm::detect().fuses();
        for (m, n, k) in [
            (50, 7, 33),
            (64, SKINNY_COLS, 17),
            (49, 1, 5),
            (100, 20, 128),
        ] {
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
            let (a64, b64): (Vec<f64>, Vec<f64>) = (
                a.iter().map(|&x| x.into()).collect(),
                b.iter().map(|&x| x.into()).collect(),
            );
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let operands = operands_of(&a, &b, (m, n, k), (trans_a, trans_b));
                let operands64 = operands_of(&a64, &b64, (m, n, k), (trans_a, trans_b));
                let expected = triple_loop(&operands, fuses);
                for rows in [0..m, 3..m - 2] {
                    let mut products = vec![f32::NAN; rows.len() * n];
                    product(&mut products, &operands, rows.clone());
                    let part = &expected[rows.start * n..rows.end * n];
                    let what = format!("({m}, {n}, {k}) rows {rows:?} trans {trans_a} {trans_b}");
                    assert_eq!(bits(&products), bits(part), "f32 {what}");
                    let mut products64 = vec![f64::NAN; rows.len() * n];
                    product(&mut products64, &operands64, rows.clone());
                    for (i, &got) in products64.iter().enumerate() {
                        let (row, col) = (rows.start + i / n, i % n);
                        let plain = plain_sum(&operands64, row, col);
                        assert_eq!(got.to_bits(), plain.to_bits(), "f64 {what} ({row}, {col})");
                    }
                }
            }
        }
    }

    /// Where the CPU fuses, the fused triple loop and the plain one differ on these
    /// operands: the bit comparisons above can tell them apart.
    #[test]
    fn the_fused_and_plain_sums_differ_here() {
        let value = |i: usize| ((i * 7919 % 263) as f32 - 131.0) / 97.0;
        let (m, n, k) = (9, 50, 33);
        let a: Vec<f32> = (0..m * k).map(value).collect();
        let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
        let operands = Operands {
            a: &a,
            b: &b,
            trans_a: false,
            trans_b: false,
            m,
            n,
            k,
        };
        assert_ne!(
            bits(&triple_loop(&operands, true)),
            bits(&triple_loop(&operands, false))
        );
    }
}
