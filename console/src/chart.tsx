// uPlot in a Preact component: the canvas is built once per shape and its data swapped in place.
// Dragging across a chart selects a time range (brushing): onSelect gets it in ms.
import { useEffect, useRef } from 'preact/hooks'
import uPlot, { type AlignedData, type Options } from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface Series {
  label: string
  color: string
  values: Array<number | null>
  /** Drawn as filled bars (stacked by the caller), else a line. */
  bars?: boolean
  dash?: number[]
}

interface ChartProps {
  title: string
  /** Bucket starts in ms. */
  x: number[]
  series: Series[]
  unit?: string
  height?: number
  /** The end of the x axis (ms): the last bucket's end, so its bar shows whole. */
  xEnd: number
  onSelect?: (fromMs: number, toMs: number) => void
}

export function Chart({ title, x, series, unit, height = 220, onSelect, xEnd }: ChartProps) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const shape = series.map((s) => `${s.label}:${s.color}:${s.bars ? 1 : 0}`).join('|')
  const select = useRef(onSelect)
  select.current = onSelect
  const range = useRef(xEnd)
  range.current = xEnd

  useEffect(() => {
    const el = box.current
    if (!el) return
    const bars = uPlot.paths.bars?.({ size: [0.9, 40], align: 1 })
    const options: Options = {
      width: Math.max(300, el.clientWidth),
      height,
      // Stacked bars carry running sums: the page draws its own legend with each outcome's count.
      legend: { show: !series.some((s) => s.bars) },
      cursor: { drag: { x: true, y: false, setScale: false } },
      // Axes and legend in UTC, as every other time in the console (uPlot would use the browser's zone).
      tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      scales: { x: { time: true, range: () => [(x[0] ?? 0) / 1000, range.current / 1000] } },
      axes: [{}, { label: unit, size: 60 }],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.bars ? 0 : 2,
          ...(s.bars ? { fill: s.color, paths: bars } : {}),
          ...(s.dash ? { dash: s.dash } : {}),
          spanGaps: !s.bars,
          points: { show: !s.bars && s.values.filter((v) => v !== null).length < 3, size: 5 },
        })),
      ],
      hooks: {
        setSelect: [
          (u: uPlot) => {
            if (u.select.width < 2) return
            const from = u.posToVal(u.select.left, 'x') * 1000
            const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
            select.current?.(from, to)
          },
        ],
      },
    }
    const data = [x.map((t) => t / 1000), ...series.map((s) => s.values)] as AlignedData
    plot.current = new uPlot(options, data, el)
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(300, el.clientWidth), height }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      plot.current?.destroy()
      plot.current = null
    }
  }, [shape, height, x[0]])

  useEffect(() => {
    plot.current?.setData([x.map((t) => t / 1000), ...series.map((s) => s.values)] as AlignedData)
  }, [x, series, xEnd])

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  )
}
