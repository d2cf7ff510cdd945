/* A small stack-machine interpreter running a loop program: an indirect-branch-heavy
 * dispatch loop, the pattern that stresses a JIT's block chaining and lookup cache. */
#include <stdint.h>
#include <stdio.h>

enum op { PUSH, LOAD, STORE, ADD, SUB, MUL, MOD, LT, JZ, JMP, PRINT, DUP, POP, HALT };

struct insn {
    enum op op;
    int64_t arg;
};

static int64_t run(const struct insn *code, int64_t *vars, int trace)
{
    int64_t stack[64];
    int sp = 0, pc = 0;
    uint64_t steps = 0;
    for (;;) {
        const struct insn *in = &code[pc++];
        steps++;
        switch (in->op) {
        case PUSH: stack[sp++] = in->arg; break;
        case LOAD: stack[sp++] = vars[in->arg]; break;
        case STORE: vars[in->arg] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case JZ: if (stack[--sp] == 0) pc = (int)in->arg; break;
        case JMP: pc = (int)in->arg; break;
        case PRINT: if (trace) printf("  out: %lld\n", (long long)stack[sp - 1]); sp--; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case POP: sp--; break;
        case HALT: return (int64_t)steps;
        }
    }
}

int main(void)
{
    /* vars: 0 = i, 1 = acc, 2 = limit
     * acc = 0; for (i = 0; i < limit; i++) { acc = (acc * 31 + i) % 1000003; if (i % 50000 == 0) print acc }
     */
    const struct insn prog[] = {
        /* 0 */ {PUSH, 0}, {STORE, 0}, {PUSH, 0}, {STORE, 1},
        /* 4 */ {LOAD, 0}, {LOAD, 2}, {LT, 0}, {JZ, 30},
        /* 8 */ {LOAD, 1}, {PUSH, 31}, {MUL, 0}, {LOAD, 0}, {ADD, 0}, {PUSH, 1000003}, {MOD, 0}, {STORE, 1},
        /* 16 */ {LOAD, 0}, {PUSH, 50000}, {MOD, 0}, {JZ, 21}, {JMP, 24},
        /* 21 */ {LOAD, 1}, {PRINT, 0}, {JMP, 24},
        /* 24 */ {LOAD, 0}, {PUSH, 1}, {ADD, 0}, {STORE, 0}, {JMP, 4}, {HALT, 0},
        /* 30 */ {LOAD, 1}, {PRINT, 0}, {HALT, 0},
    };
    int64_t vars[3] = {0, 0, 300000};
    int64_t steps = run(prog, vars, 1);
    printf("acc=%lld i=%lld steps=%lld\n", (long long)vars[1], (long long)vars[0], (long long)steps);

    /* The same computation natively, as the reference. */
    int64_t acc = 0;
    for (int64_t i = 0; i < vars[2]; i++)
        acc = (acc * 31 + i) % 1000003;
    printf("native acc=%lld %s\n", (long long)acc, acc == vars[1] ? "match" : "MISMATCH");
    return 0;
}
