#include "mod_atr_config.h"
