// uPlot in a Preact component: the canvas is built once per shape and its data swapped in place.
// Dragging across a chart selects a time range (brushing): onSelect gets it in ms.
import type { ComponentChildren } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import uPlot, { type AlignedData, type Options } from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { time } from './format'

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
  /** The chart's text alternative (a ChartTable): a canvas says nothing to a screen reader. */
  children?: ComponentChildren
}

export function Chart({ title, x, series, unit, height = 220, onSelect, xEnd, children }: ChartProps) {
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
      {/* uPlot's legend reads "--" until hovered: the table below says the numbers instead. */}
      <div ref={box} aria-hidden="true" />
      {children}
    </figure>
  )
}

export interface Column {
  label: string
  values: Array<number | null>
}

/**
 * A chart's numbers as a table, for a screen reader and for whoever cannot tell its colours apart:
 * one row per bucket that holds any, behind a disclosure so the page stays short.
 */
export function ChartTable({ title, x, columns, format, bucketMs, onSelect }: {
  title: string
  x: number[]
  columns: Column[]
  format: (value: number | null) => string
  bucketMs: number
  /** A bucket's time zooms to it: the keyboard's way to what dragging across the chart does. */
  onSelect?: (fromMs: number, toMs: number) => void
}) {
  const rows = x.flatMap((start, i) => (columns.some((c) => c.values[i] !== null && c.values[i] !== 0) ? [{ start, i }] : []))
  return (
    <details class="chart-data">
      <summary>{title} as a table</summary>
      {rows.length === 0 ? <p class="empty">Nothing in this range.</p> : (
        <table>
          <caption>{title}</caption>
          <thead><tr><th scope="col">bucket start (UTC)</th>{columns.map((c) => <th scope="col" class="num">{c.label}</th>)}</tr></thead>
          <tbody>
            {rows.map(({ start, i }) => (
              <tr><th scope="row">{onSelect ? <button type="button" class="link" title="zoom to this bucket" onClick={() => onSelect(start, start + bucketMs)}>{time(new Date(start).toISOString())}</button> : time(new Date(start).toISOString())}</th>{columns.map((c) => <td class="num">{format(c.values[i] ?? null)}</td>)}</tr>
            ))}
          </tbody>
        </table>
      )}
    </details>
  )
}
