export { startDemo, type DemoOptions, type RunningDemo } from './run.ts'
export { runTour } from './tour.ts'
