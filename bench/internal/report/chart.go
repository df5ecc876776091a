package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one line of a chart.
type Series struct {
	Name  string
	Color color.RGBA
	X, Y  []float64
	// Dashed draws the line dashed (targets).
	Dashed bool
}

// Chart is a line chart with a linear x axis and a logarithmic y axis
// (latencies near saturation span orders of magnitude).
type Chart struct {
	Title          string
	XLabel, YLabel string
	Series         []Series
	Width, Height  int
}

var (
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{220, 220, 220, 255}
)

// WritePNG renders the chart.
func (c Chart) WritePNG(w io.Writer) error {
	W, H := c.Width, c.Height
	if W == 0 {
		W, H = 900, 560
	}
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	left, right, top, bottom := 70, W-20, 40, H-60

	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			if s.Y[i] <= 0 {
				continue
			}
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			ymin, ymax = math.Min(ymin, s.Y[i]), math.Max(ymax, s.Y[i])
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax, ymin, ymax = 0, 1, 1, 10
	}
	xmin = 0
	xmax = niceCeil(xmax)
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if hi <= lo {
		hi = lo + 1
	}
	px := func(x float64) int { return left + int((x-xmin)/(xmax-xmin)*float64(right-left)) }
	py := func(y float64) int {
		return bottom - int((math.Log10(y)-lo)/(hi-lo)*float64(bottom-top))
	}

	// Grid and ticks.
	for e := lo; e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > hi {
				break
			}
			y := py(v)
			line(img, left, y, right, y, grey, false)
			text(img, 4, y+4, fmtNum(v), black)
		}
	}
	for i := 0; i <= 5; i++ {
		v := xmin + (xmax-xmin)*float64(i)/5
		x := px(v)
		line(img, x, top, x, bottom, grey, false)
		text(img, x-12, bottom+16, fmtNum(v), black)
	}
	line(img, left, bottom, right, bottom, black, false)
	line(img, left, top, left, bottom, black, false)
	text(img, left, 20, c.Title, black)
	text(img, (left+right)/2-len(c.XLabel)*7/2, H-28, c.XLabel, black)
	text(img, 4, top-14, c.YLabel, black)

	for si, s := range c.Series {
		var prev image.Point
		for i := range s.X {
			if s.Y[i] <= 0 {
				continue
			}
			p := image.Pt(px(s.X[i]), py(s.Y[i]))
			if i > 0 && prev != (image.Point{}) {
				thick(img, prev, p, s.Color, s.Dashed)
			}
			if !s.Dashed {
				dot(img, p, s.Color)
			}
			prev = p
		}
		ly := H - 12
		lx := left + si*(W-left)/max(len(c.Series), 1)
		thick(img, image.Pt(lx, ly-4), image.Pt(lx+20, ly-4), s.Color, s.Dashed)
		text(img, lx+24, ly, s.Name, black)
	}
	return png.Encode(w, img)
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func fmtNum(v float64) string {
	switch {
	case v >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%gk", v/1000)
	case v >= 1:
		return fmt.Sprintf("%g", math.Round(v*10)/10)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func dot(img *image.RGBA, p image.Point, c color.RGBA) {
	for dx := -3; dx <= 3; dx++ {
		for dy := -3; dy <= 3; dy++ {
			if dx*dx+dy*dy <= 9 {
				img.SetRGBA(p.X+dx, p.Y+dy, c)
			}
		}
	}
}

func thick(img *image.RGBA, a, b image.Point, c color.RGBA, dashed bool) {
	for o := -1; o <= 1; o++ {
		line(img, a.X, a.Y+o, b.X, b.Y+o, c, dashed)
	}
}

// line draws with Bresenham; dashed lines skip every other 6 pixels.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	for n := 0; ; n++ {
		if !dashed || (n/6)%2 == 0 {
			img.SetRGBA(x0, y0, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
