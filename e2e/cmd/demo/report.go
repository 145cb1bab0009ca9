package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// printer writes the demo's output, in colour when it goes to a terminal
// (and NO_COLOR is not set).
type printer struct {
	w     io.Writer
	color bool
	start time.Time
	muted atomic.Bool
}

func newPrinter(w *os.File) *printer {
	color := false
	if st, err := w.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" {
		color = true
	}
	return &printer{w: w, color: color, start: time.Now()}
}

// mute silences everything but say: once interrupted, the steps still
// running fail one after the other, and their errors are only noise.
func (p *printer) mute() { p.muted.Store(true) }

// say prints even when muted.
func (p *printer) say(format string, args ...any) { fmt.Fprintf(p.w, format, args...) }

type style string

const (
	plain  style = ""
	bold   style = "1"
	dim    style = "2"
	red    style = "31"
	green  style = "32"
	yellow style = "33"
	cyan   style = "36"
)

func (p *printer) paint(s style, text string) string {
	if !p.color || s == plain || text == "" {
		return text
	}
	return "\x1b[" + string(s) + "m" + text + "\x1b[0m"
}

func (p *printer) printf(format string, args ...any) {
	if !p.muted.Load() {
		fmt.Fprintf(p.w, format, args...)
	}
}

// title opens the demo.
func (p *printer) title(text, sub string) {
	line := strings.Repeat("═", utf8.RuneCountInString(text)+4)
	p.printf("\n%s\n%s\n%s\n", p.paint(cyan, "╔"+line+"╗"), p.paint(cyan, "║  ")+p.paint(bold, text)+p.paint(cyan, "  ║"), p.paint(cyan, "╚"+line+"╝"))
	if sub != "" {
		p.printf("%s\n", p.paint(dim, sub))
	}
	p.printf("\n")
}

// step announces one step; done closes it with how long it took.
func (p *printer) step(format string, args ...any) time.Time {
	p.printf("%s %s", p.paint(cyan, "▸"), fmt.Sprintf(format, args...))
	return time.Now()
}

func (p *printer) done(t0 time.Time, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if msg != "" {
		msg = " " + msg
	}
	p.printf("%s %s\n", p.paint(green, " ✓"+msg), p.paint(dim, fmt.Sprintf("(%s)", roundDur(time.Since(t0)))))
}

func (p *printer) fail(format string, args ...any) {
	p.printf("%s\n", p.paint(red, " ✗ "+fmt.Sprintf(format, args...)))
}

func (p *printer) note(format string, args ...any) {
	p.printf("  %s\n", p.paint(dim, fmt.Sprintf(format, args...)))
}

func (p *printer) section(text string) {
	p.printf("\n%s\n", p.paint(bold, text))
	p.printf("%s\n", p.paint(dim, strings.Repeat("─", utf8.RuneCountInString(text))))
}

// cell is one table cell: plain text (for width) and its style.
type cell struct {
	text  string
	style style
}

func c(text string) cell              { return cell{text: text} }
func cs(s style, text string) cell    { return cell{text: text, style: s} }
func cf(format string, a ...any) cell { return cell{text: fmt.Sprintf(format, a...)} }
func (p *printer) table(head []string, rows [][]cell) {
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, x := range r {
			if n := utf8.RuneCountInString(x.text); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	line := func(cells []cell) string {
		var b strings.Builder
		b.WriteString("  ")
		for i, x := range cells {
			pad := ""
			if i < len(cells)-1 {
				pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(x.text)+2)
			}
			b.WriteString(p.paint(x.style, x.text) + pad)
		}
		return strings.TrimRight(b.String(), " ")
	}
	var hc []cell
	for _, h := range head {
		hc = append(hc, cs(dim, h))
	}
	p.printf("%s\n", line(hc))
	for _, r := range rows {
		p.printf("%s\n", line(r))
	}
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
