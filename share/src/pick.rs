//! Which files of a share the page asks for, and what that takes (issue #9).
//!
//! The page asks in two ways: `download(link, paths?)` and `want(shareId,
//! paths)`. What happens depends on what this page holds of the share:
//!
//! | holding                 | `download`, no paths | `download(paths)`          | `want(paths)`              |
//! |-------------------------|----------------------|----------------------------|----------------------------|
//! | nothing (or it failed)  | start (or resume)    | start (or resume)          | refused: not downloading   |
//! | a running download      | refused: running     | refused: running           | tell the running download  |
//! | a finished download     | its file at once     | file at once, or reopen    | keep, or reopen            |
//!
//! A finished download may hold only the files picked before. Picking files
//! whose chunks are all stored needs nothing fetched ([`Next::Ready`]: the
//! file at once, the page's picks updated). Picking one whose chunks are not
//! all stored reopens the download ([`Next::Reopen`]): it resumes from what
//! is stored (every stored chunk kept, re-verified as on any resume, see
//! [`crate::resume`]) and fetches only the missing chunks of the picked
//! files. A `download` without paths on a finished download keeps meaning
//! "the file I have", so asking for the `File` again never starts a fetch.

use crate::Bitfield;

/// What this page holds of a share.
#[derive(Debug, Clone, Copy)]
pub enum Holding<'a> {
    /// Nothing, or a download that failed (it resumes from disk).
    Nothing,
    /// A download is running.
    Running,
    /// A download finished here: `have` are the chunks stored.
    Finished { have: &'a Bitfield },
}

/// The page's request.
#[derive(Debug, Clone, Copy)]
pub enum Ask<'a> {
    /// `download(link)`, with the chunks of the picked files when it named
    /// some (`None`: no paths given).
    Download { picked: Option<&'a Bitfield> },
    /// `want(shareId, paths)`, with the chunks of the picked files (all
    /// chunks for `null`).
    Want { picked: &'a Bitfield },
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start the download (it resumes from what is stored, if anything).
    Start,
    /// Tell the running download which files are wanted now.
    Rewant,
    /// Every chunk of the picked files is stored: keep the finished file
    /// (and record the picks).
    Ready,
    /// Reopen the finished download for `missing` chunks of the picked
    /// files; the stored chunks stay.
    Reopen { missing: u32 },
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickError {
    #[error("not downloading this share")]
    NotDownloading,
    #[error("this download is already running")]
    AlreadyRunning,
    /// The picked chunks do not match the manifest's chunk count.
    #[error("picked {picked} chunks of a share of {have}")]
    Length { picked: u32, have: u32 },
}

/// Decides what `ask` needs, given what this page holds.
pub fn next(ask: Ask<'_>, holding: Holding<'_>) -> Result<Next, PickError> {
    match (ask, holding) {
        (Ask::Download { .. }, Holding::Nothing) => Ok(Next::Start),
        (Ask::Want { .. }, Holding::Nothing) => Err(PickError::NotDownloading),
        (Ask::Download { .. }, Holding::Running) => Err(PickError::AlreadyRunning),
        (Ask::Want { .. }, Holding::Running) => Ok(Next::Rewant),
        (Ask::Download { picked: None }, Holding::Finished { .. }) => Ok(Next::Ready),
        (
            Ask::Download {
                picked: Some(picked),
            },
            Holding::Finished { have },
        )
        | (Ask::Want { picked }, Holding::Finished { have }) => match missing(picked, have)? {
            0 => Ok(Next::Ready),
            missing => Ok(Next::Reopen { missing }),
        },
    }
}

/// Chunks in `picked` that `have` lacks.
pub fn missing(picked: &Bitfield, have: &Bitfield) -> Result<u32, PickError> {
    if picked.len() != have.len() {
        return Err(PickError::Length {
            picked: picked.len(),
            have: have.len(),
        });
    }
    Ok(picked.iter_ones().filter(|&i| !have.get(i)).count() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(len: u32, ones: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(len);
        for &i in ones {
            b.set(i).unwrap();
        }
        b
    }

    #[test]
    fn nothing_held_starts_a_download_and_refuses_want() {
        let all = Bitfield::full(4);
        assert_eq!(
            next(Ask::Download { picked: None }, Holding::Nothing),
            Ok(Next::Start)
        );
        assert_eq!(
            next(Ask::Download { picked: Some(&all) }, Holding::Nothing),
            Ok(Next::Start)
        );
        assert_eq!(
            next(Ask::Want { picked: &all }, Holding::Nothing),
            Err(PickError::NotDownloading)
        );
    }

    #[test]
    fn a_running_download_is_told_and_not_started_twice() {
        let all = Bitfield::full(4);
        assert_eq!(
            next(Ask::Want { picked: &all }, Holding::Running),
            Ok(Next::Rewant)
        );
        assert_eq!(
            next(Ask::Download { picked: None }, Holding::Running),
            Err(PickError::AlreadyRunning)
        );
        assert_eq!(
            next(Ask::Download { picked: Some(&all) }, Holding::Running),
            Err(PickError::AlreadyRunning)
        );
    }

    #[test]
    fn a_finished_subset_reopens_for_exactly_the_missing_chunks() {
        // Chunks 1 and 2 stored (the files picked first); the new pick needs 2, 3 and 5.
        let have = bits(6, &[1, 2]);
        let more = bits(6, &[2, 3, 5]);
        let finished = Holding::Finished { have: &have };
        assert_eq!(
            next(Ask::Want { picked: &more }, finished),
            Ok(Next::Reopen { missing: 2 })
        );
        assert_eq!(
            next(
                Ask::Download {
                    picked: Some(&more)
                },
                finished
            ),
            Ok(Next::Reopen { missing: 2 })
        );
        // Everything: the four not stored.
        let all = Bitfield::full(6);
        assert_eq!(
            next(Ask::Want { picked: &all }, finished),
            Ok(Next::Reopen { missing: 4 })
        );
    }

    #[test]
    fn a_finished_download_with_the_picked_chunks_stored_needs_nothing() {
        let have = bits(6, &[1, 2, 4]);
        let finished = Holding::Finished { have: &have };
        // Fewer files than before, or files whose chunks came with others.
        assert_eq!(
            next(
                Ask::Want {
                    picked: &bits(6, &[2])
                },
                finished
            ),
            Ok(Next::Ready)
        );
        assert_eq!(
            next(
                Ask::Download {
                    picked: Some(&bits(6, &[1, 4]))
                },
                finished
            ),
            Ok(Next::Ready)
        );
        // No paths: the file as it is, never a fetch.
        assert_eq!(
            next(Ask::Download { picked: None }, finished),
            Ok(Next::Ready)
        );
        // Nothing picked at all.
        assert_eq!(
            next(
                Ask::Want {
                    picked: &Bitfield::new(6)
                },
                finished
            ),
            Ok(Next::Ready)
        );
    }

    #[test]
    fn picks_of_another_length_are_refused() {
        let have = bits(6, &[1]);
        assert_eq!(
            next(
                Ask::Want {
                    picked: &Bitfield::full(7)
                },
                Holding::Finished { have: &have }
            ),
            Err(PickError::Length { picked: 7, have: 6 })
        );
    }

    #[test]
    fn missing_counts_picked_chunks_not_stored() {
        for len in [0u32, 1, 7, 8, 9, 64, 65, 1000] {
            let have = Bitfield::full(len);
            assert_eq!(missing(&Bitfield::full(len), &have), Ok(0));
            assert_eq!(missing(&Bitfield::full(len), &Bitfield::new(len)), Ok(len));
            let evens = bits(len, &(0..len).step_by(2).collect::<Vec<_>>());
            let threes = bits(len, &(0..len).step_by(3).collect::<Vec<_>>());
            let want = (0..len).filter(|i| i % 3 == 0 && i % 2 != 0).count() as u32;
            assert_eq!(missing(&threes, &evens), Ok(want), "len {len}");
        }
    }
}
