/** The release version, kept in step with package.json by the release checklist (a test compares them). */
export const VERSION = "0.1.0";
