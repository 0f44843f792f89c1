/** Reading from the server where a failure is only worth a message. */

/** `app.api.get(path)`'s answer, or null after telling the user that `what` could not be read. */
export async function readOrReport(app, path, what) {
  try {
    return await app.api.get(path);
  } catch (error) {
    app.showMessage(`Could not read ${what}: ${error.message}`, { level: "error" });
    return null;
  }
}
