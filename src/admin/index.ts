export { adminRoutes, type AdminActions } from './api.ts'
export { adminAuth, consoleSignInOf, type AdminAuth } from './auth.ts'
export type { ReloadResult } from './console-shapes.ts'
export { createAdminServer, type AdminRoute, type Readiness } from './server.ts'
