// Start the NHS.UK frontend components (header menu, character count, error summary focus, ...).
import { initAll } from "./nhsuk-frontend.min.js";

initAll();
