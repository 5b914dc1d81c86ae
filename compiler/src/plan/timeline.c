/* timeline.c — the timetable as an SVG picture (see timeline.h). Plain SVG 1.1 with
 * inline attributes, no scripts or fonts beyond a generic family, so any viewer (and
 * rsvg-convert) draws it the same. */
#include "plan/timeline.h"

#include "plan/schedule.h"

enum { LEFT = 80, RIGHT = 20, TOP = 48, ROW = 34, GAP = 8, PLOT = 1100, FOOT = 70 };

/* A kind's colour family (hue in degrees) and its letter; 0 for kinds not drawn. */
static int drawn(pmlc_instr_kind k, int *hue, char *letter)
{
    switch (k) {
    case PMLC_I_FWD:
        return *hue = 212, *letter = 'F', 1;
    case PMLC_I_BWD:
    case PMLC_I_BWD_INPUT:
        return *hue = 140, *letter = 'B', 1;
    case PMLC_I_BWD_WEIGHT:
        return *hue = 32, *letter = 'W', 1;
    default:
        return 0;
    }
}

static double cost_of(const pmlc_chunk_timetable *c, pmlc_instr_kind k)
{
    return k == PMLC_I_FWD ? c->f : k == PMLC_I_BWD ? c->b + c->w : k == PMLC_I_BWD_INPUT ? c->b : c->w;
}

static void legend(FILE *out, double x, double y, int hue, const char *what)
{
    fprintf(out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"hsl(%d,60%%,55%%)\" stroke=\"#333\"/>\n", x,
            y - 11, hue);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 19, y, what);
}

void pmlc_plan_print_timeline(const pmlc_plan *pl, FILE *out)
{
    const pmlc_timetable *tt = pl->timetable;
    int S = tt->n_stages, V = tt->n_chunks / S;
    double span = tt->makespan > 0 ? tt->makespan : 1, scale = PLOT / span;
    int width = LEFT + PLOT + RIGHT, height = TOP + S * (ROW + GAP) + FOOT;
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            width, height, width, height);
    fprintf(out,
            "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">model '%s': %s, %d stage%s",
            LEFT, pl->g->name, pmlc_schedule_name(pl->schedule), S, S == 1 ? "" : "s");
    if (V > 1) fprintf(out, " of %d chunks each", V);
    fprintf(out, ", %lld micro-batch%s</text>\n", (long long)tt->n_mb, tt->n_mb == 1 ? "" : "es");
    for (int s = 0; s < S; s++) {
        const pmlc_stage_timetable *st = &tt->stages[s];
        double y = TOP + s * (ROW + GAP);
        /* The row's background is idle time: the bubble shows wherever no box covers it. */
        fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#eeeeee\"/>\n", LEFT, y, PLOT, ROW);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">stage %d</text>\n", LEFT - 10, y + ROW / 2 + 4, s);
        for (int i = 0; i < st->instr.n; i++) {
            pmlc_instr in = st->instr.v[i];
            int hue;
            char letter;
            if (!drawn(in.kind, &hue, &letter)) continue;
            double x = LEFT + st->start[i] * scale, w = cost_of(&tt->chunks[in.chunk], in.kind) * scale;
            /* Shade by micro-batch: neighbours differ, so each box stands out. With
             * chunks, by the stage's chunk instead (dark the first, light the last) and
             * a later chunk's box is dashed, so the passes through a stage show. */
            int v = in.chunk / S, light = V > 1 ? 36 + v * 36 / (V - 1) : 42 + (int)(in.mb % 4) * 9;
            fprintf(out,
                    "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"hsl(%d,60%%,%d%%)\" "
                    "stroke=\"#333\" stroke-width=\"%s\"%s><title>stage %d: %s of micro-batch %d",
                    x, y, w, ROW, hue, light, v ? "1" : "0.5", v ? " stroke-dasharray=\"3,2\"" : "", s,
                    pmlc_instr_name(in.kind), in.mb);
            if (V > 1) fprintf(out, " on chunk %d (the stage's chunk %d)", in.chunk, v);
            fputs("</title></rect>\n", out);
            if (w >= 22 && V > 1)
                fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\">%c%d/%d</text>\n",
                        x + w / 2, y + ROW / 2 + 4, w >= 34 ? 12 : 9, letter, in.mb, v);
            else if (w >= 16)
                fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\">%c%d</text>\n",
                        x + w / 2, y + ROW / 2 + 4, w >= 26 ? 12 : 9, letter, in.mb);
        }
    }
    double y = TOP + S * (ROW + GAP) + 18;
    legend(out, LEFT, y, 212, "F forward");
    int split = 0;
    for (int s = 0; s < S; s++)
        for (int i = 0; i < tt->stages[s].instr.n; i++) split |= tt->stages[s].instr.v[i].kind == PMLC_I_BWD_WEIGHT;
    legend(out, LEFT + 110, y, 140, split ? "B input-gradient half" : "B backward");
    if (split) legend(out, LEFT + 290, y, 32, "W weight-gradient half");
    if (V > 1)
        fprintf(out,
                "<text x=\"%d\" y=\"%.1f\">grey: idle; F3/1: micro-batch 3 on the stage's chunk 1 (dark, solid: "
                "chunk 0; light, dashed: later chunks)</text>\n",
                LEFT + (split ? 480 : 290), y);
    else
        fprintf(out, "<text x=\"%d\" y=\"%.1f\">grey: idle (the bubble); the number is the micro-batch</text>\n",
                LEFT + (split ? 480 : 290), y);
    fprintf(out,
            "<text x=\"%d\" y=\"%.1f\">bubble %.1f%% analytic, %.1f%% simulated with the plan's stage costs "
            "(step time %.3g, in FLOPs of the slowest path)</text>\n",
            LEFT, y + 24, 100 * pl->bubble, 100 * tt->bubble, tt->makespan);
    fputs("</svg>\n", out);
}
