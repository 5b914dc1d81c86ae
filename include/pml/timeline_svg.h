/* pml/timeline_svg.h — how a pipeline timetable is drawn, one look for the plan's
 * simulated timetable (compiler/src/plan/timeline.c, `pmlc plan --timeline`) and a
 * run's measured step (runtime/src/run/timeline.c, `pmlc train --timeline`): plain SVG
 * 1.1 with inline attributes, no scripts or fonts beyond a generic family, so any
 * viewer (and rsvg-convert) draws it the same. Header-only, as hash.h.
 *
 * One row per stage device, time left to right over the plot's width; a row's grey
 * background is idle time, so the bubble shows wherever no box covers it. A box per
 * forward (F), backward or its input-gradient half (B) and weight-gradient half (W),
 * coloured by kind; shaded by micro-batch, or with chunks by the device's chunk (dark
 * and solid the first, light and dashed later ones); labelled when it is wide enough. */
#ifndef PML_TIMELINE_SVG_H
#define PML_TIMELINE_SVG_H

#include <math.h>
#include <stdio.h>

enum {
    PML_TL_LEFT = 80,
    PML_TL_RIGHT = 20,
    PML_TL_TOP = 48,
    PML_TL_ROW = 34,
    PML_TL_GAP = 8,
    PML_TL_PLOT = 1100,
    PML_TL_FOOT = 70
};

/* A box's kind: its letter and colour family (hue in degrees). U, the optimizer
 * update, has no micro-batch; a simulated timetable does not draw it. */
typedef enum pml_tl_kind { PML_TL_F, PML_TL_B, PML_TL_W, PML_TL_U } pml_tl_kind;

static inline int pml_tl_hue(pml_tl_kind k)
{
    return k == PML_TL_F ? 212 : k == PML_TL_B ? 140 : k == PML_TL_W ? 32 : 280;
}
static inline char pml_tl_letter(pml_tl_kind k)
{
    return k == PML_TL_F ? 'F' : k == PML_TL_B ? 'B' : k == PML_TL_W ? 'W' : 'U';
}

/* HSL (saturation 60%) as "#rrggbb" into buf[8]: SVG 1.1 viewers need not know CSS3's
 * hsl(), and some (cairosvg) draw it black. */
static inline const char *pml_tl_fill(int hue, int light, char *buf)
{
    double l = light / 100.0, c = (1 - fabs(2 * l - 1)) * 0.6, hp = hue / 60.0;
    double x = c * (1 - fabs(fmod(hp, 2) - 1)), m = l - c / 2, r = 0, g = 0, b = 0;
    switch ((int)hp % 6) {
    case 0:
        r = c, g = x;
        break;
    case 1:
        r = x, g = c;
        break;
    case 2:
        g = c, b = x;
        break;
    case 3:
        g = x, b = c;
        break;
    case 4:
        r = x, b = c;
        break;
    default:
        r = c, b = x;
        break;
    }
    snprintf(buf, 8, "#%02x%02x%02x", (int)(255 * (r + m) + 0.5), (int)(255 * (g + m) + 0.5),
             (int)(255 * (b + m) + 0.5));
    return buf;
}

/* The document's start, for `rows` rows; the title line is the caller's to print
 * (between `<text ...>` opened here and pml_tl_title_end). */
static inline void pml_tl_begin(FILE *out, int rows)
{
    int width = PML_TL_LEFT + PML_TL_PLOT + PML_TL_RIGHT,
        height = PML_TL_TOP + rows * (PML_TL_ROW + PML_TL_GAP) + PML_TL_FOOT;
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">",
            width, height, width, height, PML_TL_LEFT);
}

static inline void pml_tl_title_end(FILE *out) { fputs("</text>\n", out); }

/* Row `row`'s idle background and its name, "stage N". */
static inline void pml_tl_row(FILE *out, int row)
{
    double y = PML_TL_TOP + row * (PML_TL_ROW + PML_TL_GAP);
    fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#eeeeee\"/>\n", PML_TL_LEFT, y,
            PML_TL_PLOT, PML_TL_ROW);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">stage %d</text>\n", PML_TL_LEFT - 10,
            y + PML_TL_ROW / 2 + 4, row);
}

/* A box on `row` over [t0, t1) of a plot `span` long (any unit): kind `k` of
 * micro-batch `mb` (-1: none, as an update), on the device's chunk `v` of `V`; its
 * tooltip is "stage ROW: WHAT of micro-batch MB", and with chunks " on chunk CHUNK (the
 * stage's chunk V)". */
static inline void pml_tl_box(FILE *out, int row, double t0, double t1, double span, pml_tl_kind k, const char *what,
                              long long mb, int chunk, int v, int V)
{
    double scale = PML_TL_PLOT / (span > 0 ? span : 1), x = PML_TL_LEFT + t0 * scale, w = (t1 - t0) * scale;
    double y = PML_TL_TOP + row * (PML_TL_ROW + PML_TL_GAP);
    /* Shade by micro-batch: neighbours differ, so each box stands out. With chunks, by
     * the device's chunk instead, and a later chunk's box is dashed, so the passes
     * through a device show. */
    int light = V > 1 ? 36 + v * 36 / (V - 1) : 42 + (int)((mb < 0 ? 0 : mb) % 4) * 9;
    char fill[8];
    if (mb < 0) {
        fprintf(out,
                "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
                "stroke=\"#333\" stroke-width=\"0.5\"><title>stage %d: %s</title></rect>\n",
                x, y, w, PML_TL_ROW, pml_tl_fill(pml_tl_hue(k), 55, fill), row, what);
        if (w >= 12)
            fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%c</text>\n", x + w / 2,
                    y + PML_TL_ROW / 2 + 4, pml_tl_letter(k));
        return;
    }
    fprintf(out,
            "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
            "stroke=\"#333\" stroke-width=\"%s\"%s><title>stage %d: %s of micro-batch %lld",
            x, y, w, PML_TL_ROW, pml_tl_fill(pml_tl_hue(k), light, fill), v ? "1" : "0.5",
            v ? " stroke-dasharray=\"3,2\"" : "", row, what, mb);
    if (V > 1) fprintf(out, " on chunk %d (the stage's chunk %d)", chunk, v);
    fputs("</title></rect>\n", out);
    if (w >= 22 && V > 1)
        fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\">%c%lld/%d</text>\n",
                x + w / 2, y + PML_TL_ROW / 2 + 4, w >= 34 ? 12 : 9, pml_tl_letter(k), mb, v);
    else if (w >= 16)
        fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\">%c%lld</text>\n", x + w / 2,
                y + PML_TL_ROW / 2 + 4, w >= 26 ? 12 : 9, pml_tl_letter(k), mb);
}

static inline void pml_tl_key(FILE *out, double x, double y, pml_tl_kind k, const char *what)
{
    char fill[8];
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"#333\"/>\n", x, y - 11,
            pml_tl_fill(pml_tl_hue(k), 55, fill));
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 19, y, what);
}

/* Below `rows` rows: the legend (`split`: the backward is drawn as B and W halves;
 * `update`: U boxes are drawn; V chunks per device), then the caption line opened for
 * the caller to print, closed by pml_tl_end. */
static inline void pml_tl_legend(FILE *out, int rows, int split, int update, int V)
{
    double y = PML_TL_TOP + rows * (PML_TL_ROW + PML_TL_GAP) + 18;
    int x = PML_TL_LEFT + 110;
    pml_tl_key(out, PML_TL_LEFT, y, PML_TL_F, "F forward");
    pml_tl_key(out, x, y, PML_TL_B, split ? "B input-gradient half" : "B backward");
    x += 180;
    if (split) pml_tl_key(out, x, y, PML_TL_W, "W weight-gradient half"), x += 190;
    if (update) pml_tl_key(out, x, y, PML_TL_U, "U update"), x += 100;
    fprintf(out, "<text x=\"%d\" y=\"%.1f\">%s</text>\n", x, y,
            V > 1 ? "grey: idle; F3/1: micro-batch 3 on the stage's chunk 1 (light, dashed: later chunks)"
                  : "grey: idle (the bubble); the number is the micro-batch");
    fprintf(out, "<text x=\"%d\" y=\"%.1f\">", PML_TL_LEFT, y + 24);
}

static inline void pml_tl_end(FILE *out) { fputs("</text>\n</svg>\n", out); }

#endif
