// Saving a finished download. The File is backed by the browser's private
// storage (OPFS); it is streamed to disk, never read into memory as a whole.

const REVOKE_AFTER_MS = 5 * 60 * 1000;

/**
 * Resolves to 'saved' (written through the File System Access API),
 * 'started' (handed to the browser's download manager) or 'cancelled'.
 */
export async function saveFile(file) {
  if (typeof window.showSaveFilePicker === 'function') {
    let handle = null;
    try {
      handle = await window.showSaveFilePicker({ suggestedName: file.name || 'download' });
    } catch (e) {
      if (e?.name === 'AbortError') return 'cancelled';
      // Refused for another reason (policy, odd file name): fall back below.
      console.warn('shoal: save picker refused, using a download link instead', e);
    }
    if (handle) {
      const writable = await handle.createWritable();
      // pipeTo closes the writable when done and aborts it on error.
      await file.stream().pipeTo(writable);
      return 'saved';
    }
  }
  const url = URL.createObjectURL(file);
  const a = document.createElement('a');
  a.href = url;
  a.download = file.name || 'download';
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download manager reads the blob URL asynchronously: revoke it later.
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_AFTER_MS);
  return 'started';
}
