export { providerAccounts, startDemo, type DemoOptions, type RunningDemo } from './run.ts'
export { consoleLine, runTour } from './tour.ts'
