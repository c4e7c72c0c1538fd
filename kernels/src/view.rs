//! Strided matrix views that the kernels read and write through raw pointers.
//!
//! The constructors check every index the view can reach against the slice
//! it borrows, so a kernel that stays inside `rows x cols` never leaves the
//! caller's memory. A [`MatMut`] additionally never maps two (row, col)
//! positions to one element, so it can be split into disjoint parts that
//! different threads write at the same time.

use std::marker::PhantomData;

/// Why a view could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewError {
    /// The last element the view reaches lies past the end of the slice.
    OutOfBounds {
        /// Index of the farthest element, `(rows-1)*row_stride + (cols-1)*col_stride`.
        last: usize,
        /// Length of the slice.
        len: usize,
    },
    /// The index arithmetic overflows `usize`.
    Overflow,
    /// Two positions of a mutable view would share one element.
    Overlap {
        /// Row stride of the view.
        row_stride: usize,
        /// Column stride of the view.
        col_stride: usize,
    },
}

fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Option<usize>, ViewError> {
    if rows == 0 || cols == 0 {
        return Ok(None);
    }
    let r = (rows - 1).checked_mul(rs).ok_or(ViewError::Overflow)?;
    let c = (cols - 1).checked_mul(cs).ok_or(ViewError::Overflow)?;
    r.checked_add(c).map(Some).ok_or(ViewError::Overflow)
}

fn check_bounds(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Result<(), ViewError> {
    match last_index(rows, cols, rs, cs)? {
        Some(last) if last >= len => Err(ViewError::OutOfBounds { last, len }),
        _ => Ok(()),
    }
}

/// No two (row, col) positions share an element: the smaller stride steps
/// over a whole run of the other axis. (This rejects a few exotic layouts
/// that would also be injective; none of them is a BLAS layout.)
fn check_injective(rows: usize, cols: usize, rs: usize, cs: usize) -> Result<(), ViewError> {
    let overlap = Err(ViewError::Overlap { row_stride: rs, col_stride: cs });
    // (extent, stride) of each axis that has more than one position.
    let mut axes = [(rows, rs), (cols, cs)];
    axes.sort_by_key(|&(_, s)| s);
    let [(n_inner, s_inner), (n_outer, s_outer)] = axes;
    if n_inner > 1 && s_inner == 0 {
        return overlap;
    }
    if n_outer > 1 {
        let span = if n_inner > 1 { n_inner.checked_mul(s_inner).ok_or(ViewError::Overflow)? } else { 1 };
        if s_outer < span {
            return overlap;
        }
    }
    Ok(())
}

/// A read-only `rows x cols` matrix with element (i, j) at
/// `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A view of `data`; fails if any position lies outside the slice.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, ViewError> {
        check_bounds(data.len(), rows, cols, row_stride, col_stride)?;
        Ok(MatRef { data, rows, cols, rs: row_stride, cs: col_stride })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between consecutive rows, in elements.
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    /// Distance between consecutive columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    /// Element (i, j). Panics outside the view (only used off the hot path).
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols);
        self.data[i * self.rs + j * self.cs]
    }
    /// The transposed view (no copy).
    pub fn t(self) -> MatRef<'a> {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// The `rows x cols` block whose top-left corner is (i, j); `None` if it
    /// does not fit inside this view.
    pub fn block(&self, i: usize, j: usize, rows: usize, cols: usize) -> Option<MatRef<'a>> {
        if i.checked_add(rows)? > self.rows || j.checked_add(cols)? > self.cols {
            return None;
        }
        let start = if rows == 0 || cols == 0 { 0 } else { i * self.rs + j * self.cs };
        Some(MatRef { data: &self.data[start..], rows, cols, rs: self.rs, cs: self.cs })
    }
    /// The borrowed slice, starting at element (0, 0).
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
}

/// A mutable `rows x cols` matrix with element (i, j) at
/// `data[i * row_stride + j * col_stride]`, no two positions sharing an
/// element. It can be split into disjoint blocks that are `Send`.
#[derive(Debug)]
pub struct MatMut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: a MatMut is an exclusive borrow of the elements it reaches (the
// constructor and the splits guarantee no other live view reaches them), so
// moving it to another thread is like moving a `&mut [f32]`.
unsafe impl Send for MatMut<'_> {}
// SAFETY: shared access (`&MatMut`) only reads through `at`, like `&[f32]`.
unsafe impl Sync for MatMut<'_> {}

impl<'a> MatMut<'a> {
    /// A view of `data`; fails if any position lies outside the slice or two
    /// positions share an element.
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self, ViewError> {
        check_bounds(data.len(), rows, cols, row_stride, col_stride)?;
        check_injective(rows, cols, row_stride, col_stride)?;
        Ok(MatMut { ptr: data.as_mut_ptr(), rows, cols, rs: row_stride, cs: col_stride, _borrow: PhantomData })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between consecutive rows, in elements.
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    /// Distance between consecutive columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    /// Element (i, j). Panics outside the view.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols);
        // SAFETY: (i, j) is inside the view, which the constructor checked
        // against the borrowed slice.
        unsafe { *self.ptr.add(i * self.rs + j * self.cs) }
    }
    /// Sets element (i, j). Panics outside the view.
    pub fn set(&mut self, i: usize, j: usize, v: f32) {
        assert!(i < self.rows && j < self.cols);
        // SAFETY: as in `at`; `&mut self` makes the write exclusive.
        unsafe { *self.ptr.add(i * self.rs + j * self.cs) = v }
    }
    /// A shorter-lived view of the same elements.
    pub fn rb_mut(&mut self) -> MatMut<'_> {
        MatMut { ptr: self.ptr, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs, _borrow: PhantomData }
    }
    /// Splits into rows `0..at` and `at..`. Panics if `at > rows`.
    pub fn split_at_row(self, at: usize) -> (MatMut<'a>, MatMut<'a>) {
        assert!(at <= self.rows);
        let off = if at == self.rows || self.cols == 0 { 0 } else { at * self.rs };
        let top = MatMut { rows: at, ..self.rb_copy() };
        // SAFETY: `off` is the index of element (at, 0), inside the borrowed
        // slice when the bottom part is non-empty (else 0).
        let bottom = MatMut { ptr: unsafe { self.ptr.add(off) }, rows: self.rows - at, ..self.rb_copy() };
        (top, bottom)
    }
    /// Splits into columns `0..at` and `at..`. Panics if `at > cols`.
    pub fn split_at_col(self, at: usize) -> (MatMut<'a>, MatMut<'a>) {
        assert!(at <= self.cols);
        let off = if at == self.cols || self.rows == 0 { 0 } else { at * self.cs };
        let left = MatMut { cols: at, ..self.rb_copy() };
        // SAFETY: `off` is the index of element (0, at), inside the borrowed
        // slice when the right part is non-empty (else 0).
        let right = MatMut { ptr: unsafe { self.ptr.add(off) }, cols: self.cols - at, ..self.rb_copy() };
        (left, right)
    }
    /// Writes `src` to row i from column j on. Panics outside the view.
    pub fn write_run(&mut self, i: usize, j: usize, src: &[f32]) {
        assert!(i < self.rows && j.checked_add(src.len()).is_some_and(|e| e <= self.cols));
        if self.cs == 1 && !src.is_empty() {
            // SAFETY: the run (i, j..j + len) is inside the view (checked
            // above) and contiguous; `&mut self` makes the write exclusive,
            // and `src` cannot alias it (a shared borrow beside `&mut self`).
            let dst = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.rs + j), src.len()) };
            // Whole 16-float blocks as fixed-size moves the compiler
            // inlines: these runs are short, and a `memmove` call per run
            // costs more than the copy.
            let (mut d, mut s) = (dst.chunks_exact_mut(16), src.chunks_exact(16));
            for (d, s) in (&mut d).zip(&mut s) {
                let d: &mut [f32; 16] = d.try_into().expect("chunks of 16");
                *d = *<&[f32; 16]>::try_from(s).expect("chunks of 16");
            }
            for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
                *d = *s;
            }
            return;
        }
        for (t, &v) in src.iter().enumerate() {
            // SAFETY: (i, j + t) is inside the view (checked above), which
            // the constructor checked against the borrowed slice; `&mut self`
            // makes the write exclusive.
            unsafe { *self.ptr.add(i * self.rs + (j + t) * self.cs) = v }
        }
    }
    fn rb_copy(&self) -> MatMut<'a> {
        MatMut { ptr: self.ptr, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs, _borrow: PhantomData }
    }
    /// Raw pointer to element (0, 0), for kernels in this crate.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let v = vec![0.0f32; 12];
        assert!(MatRef::new(&v, 3, 4, 4, 1).is_ok());
        assert_eq!(MatRef::new(&v, 3, 5, 4, 1).unwrap_err(), ViewError::OutOfBounds { last: 12, len: 12 });
        assert!(MatRef::new(&v, 0, 100, 4, 1).is_ok());
        assert_eq!(MatRef::new(&v, 2, 2, usize::MAX, 1).unwrap_err(), ViewError::Overflow);
    }

    #[test]
    fn mutable_views_must_not_overlap() {
        let mut v = vec![0.0f32; 12];
        assert!(MatMut::new(&mut v, 3, 4, 4, 1).is_ok());
        assert!(MatMut::new(&mut v, 3, 4, 1, 3).is_ok());
        assert!(matches!(MatMut::new(&mut v, 3, 4, 2, 1), Err(ViewError::Overlap { .. })));
        assert!(matches!(MatMut::new(&mut v, 3, 4, 0, 1), Err(ViewError::Overlap { .. })));
        assert!(MatMut::new(&mut v, 1, 4, 0, 1).is_ok());
    }

    #[test]
    fn splits_are_disjoint_and_cover() {
        let mut v: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let m = MatMut::new(&mut v, 3, 4, 4, 1).unwrap();
        let (top, bottom) = m.split_at_row(1);
        assert_eq!(top.rows(), 1);
        assert_eq!(bottom.at(0, 0), 4.0);
        let (l, mut r) = bottom.split_at_col(3);
        assert_eq!(l.at(1, 2), 10.0);
        r.set(1, 0, -1.0);
        assert_eq!(v[11], -1.0);
    }
}
