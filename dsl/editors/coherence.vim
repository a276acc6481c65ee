" Vim syntax file
" Language:    coherence spec language (*.coh)
" Reference:   docs/language.md; grammar: coherence/frontend/coherence.lark
" Install:     see dsl/editors/README.md

if exists("b:current_syntax")
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match

" ---- comments and strings --------------------------------------------------------------
syn keyword cohTodo       contained TODO FIXME XXX NOTE
syn match   cohComment    "#.*$" contains=cohTodo,@Spell
syn match   cohEscape     contained "\\."
syn region  cohString     start=+"+ skip=+\\.+ end=+"\|$+ oneline contains=cohEscape

" ---- keywords ----------------------------------------------------------------------------
" statements
syn keyword cohStatement  system unit profile input param state let next loop objective require
" loop clauses
syn keyword cohClause     every phase senses as delay window actuates limit rate deadband
syn keyword cohClause     tolerance cooldown stabilize when
" objectives and requirements
syn keyword cohObjective  minimize maximize keep
syn keyword cohRequire    stable coherent always for after within no flapping of bad equilibrium
syn keyword cohRequire    inputs held free
" the rest of the vocabulary
syn keyword cohKeyword    in init nominal integer to by up down from
syn keyword cohConditional if then else
syn keyword cohLogical    and or not

" `tick 1s` declares the tick; `tick` in an expression is one tick's duration
syn match   cohStatement  "\<tick\>\ze\s*[0-9.]"
syn match   cohTickConst  "\<tick\>\(\s*[0-9.]\)\@!"

" `max` and `floor` are functions before `(`, and keywords in `no flapping of x max N` and
" `objective minimize x floor Q`
syn match   cohFunction   "\<\(min\|max\|abs\|clamp\|ceil\|floor\|round\|sqrt\|exp\|log\|pow\)\>\ze\s*("
syn match   cohRequire    "\<max\>\ze\s\+[0-9.]"
syn match   cohObjective  "\<floor\>\ze\s\+[0-9.]"

" calibration profiles: PROFILE.step_time(x), from PROFILE.KEY
syn match   cohProfileFn  "\<[A-Za-z_][A-Za-z_0-9]*\.\(step_time_slope\|step_time\|throughput_gain\|throughput\|overhead\)\>"

" ---- numbers and units -------------------------------------------------------------------
" A number: 3, 0.25, .5, 1., 1e-3 (no sign: `-` is an operator).
syn match   cohNumber     "\(\<\|[^A-Za-z_0-9.]\@<=\)\(\d\+\(\.\d*\)\=\|\.\d\+\)\([eE][+-]\=\d\+\)\=" nextgroup=cohUnit,cohUnitSpace
" The unit written right after a number: 15s, 300 ms, 100 req/s, 900 $/h, 5%, 3 ticks.
" Keywords that may follow a number are not units (`init 0 next`, `max 2 within`,
" `tolerance 5% floor 1s`).
syn match   cohUnitSpace  contained "\s\+" nextgroup=cohUnit
syn match   cohUnit       contained "\(\(actuates\|and\|as\|by\|cooldown\|deadband\|delay\|down\|else\|every\|floor\|for\|free\|from\|held\|if\|in\|init\|input\|inputs\|integer\|keep\|let\|limit\|loop\|max\|maximize\|minimize\|next\|nominal\|not\|objective\|or\|param\|phase\|profile\|rate\|require\|senses\|stabilize\|state\|system\|then\|tick\|to\|tolerance\|unit\|up\|when\|window\|within\)\>\)\@!\(\$\|%\|[A-Za-z_]\+\)\(\^-\=\d\+\)\=\(/\(\$\|[A-Za-z_]\+\)\(\^-\=\d\+\)\=\)*"
" `: UNIT` in a declaration (`: 1` is dimensionless)
syn match   cohAnnotation ":\s*\(1\>\|\(\$\|%\|[A-Za-z_]\+\)\(\^-\=\d\+\)\=\(/\(\$\|[A-Za-z_]\+\)\(\^-\=\d\+\)\=\)*\)" contains=cohAnnotUnit
syn match   cohAnnotUnit  contained "[^: \t]\+"

" ---- declared names ----------------------------------------------------------------------
syn match   cohDeclName   "\(\<\(system\|loop\)\s\+\)\@<=[A-Za-z_][A-Za-z_0-9]*"
syn match   cohDefName    "\(\<\(input\|param\|state\|let\|next\|unit\|profile\)\s\+\)\@<=[A-Za-z_][A-Za-z_0-9]*"

" ---- operators ---------------------------------------------------------------------------
syn match   cohOperator   "<=\|>=\|==\|!=\|[<>=+\-*/^]"
syn match   cohDelimiter  "[{}\[\](),]"

" ---- highlight links ---------------------------------------------------------------------
hi def link cohTodo        Todo
hi def link cohComment     Comment
hi def link cohString      String
hi def link cohEscape      SpecialChar
hi def link cohStatement   Statement
hi def link cohClause      Keyword
hi def link cohObjective   Keyword
hi def link cohRequire     Keyword
hi def link cohKeyword     Keyword
hi def link cohConditional Conditional
hi def link cohLogical     Operator
hi def link cohTickConst   Constant
hi def link cohFunction    Function
hi def link cohProfileFn   Function
hi def link cohNumber      Number
hi def link cohUnit        Type
hi def link cohAnnotUnit   Type
hi def link cohDeclName    Identifier
hi def link cohDefName     Identifier
hi def link cohOperator    Operator
hi def link cohDelimiter   Delimiter

let b:current_syntax = "coherence"

let &cpo = s:cpo_save
unlet s:cpo_save
